import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vitest/config";

// Django (daphne) in development; override with CONSULTA_BACKEND=http://host:port.
const backend = process.env.CONSULTA_BACKEND ?? "http://127.0.0.1:8000";

const proxy = {
  "/api": { target: backend, changeOrigin: false },
  // Keys starting with "^" are regular expressions: a plain "/admin" prefix would
  // also swallow the SPA's own /admin-console routes.
  "^/admin(/|$)": { target: backend, changeOrigin: false },
  "^/ws/": { target: backend, ws: true, changeOrigin: false },
};

export default defineConfig(({ command, isPreview }) => {
  // The dev server serves the SPA at "/" and forwards Django's /static/ (admin
  // assets) to the backend; built files live under /static/ where Django's
  // whitenoise serves dist/.
  const devServer = command === "serve" && !isPreview;
  return {
    base: devServer ? "/" : "/static/",
    plugins: [vue()],
    build: {
      outDir: "dist",
      emptyOutDir: true,
      assetsDir: "assets",
    },
    server: {
      proxy: { ...proxy, "/static": { target: backend, changeOrigin: false } },
    },
    preview: { proxy },
    test: {
      environment: "node",
      include: ["src/**/*.test.ts"],
      restoreMocks: true,
    },
  };
});
