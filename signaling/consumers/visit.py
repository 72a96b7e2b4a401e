"""``/ws/v1/visits/<uuid>/``: WebRTC signaling of one video visit: between the patient and the practitioner in
direct mode, and between every participant (guests included) and the media relay in relay mode.

Protocol, limits and close codes: signaling/visit_protocol.py and docs/signaling-protocol.md.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from signaling import visit_protocol as vp
from telehealth.channels import RELAY_GROUP, RELAY_SIGNAL, participant_inbox, visit_channel_group
from telehealth.dto import SignalingGrant
from telehealth.errors import TelehealthError
from telehealth.selectors import visit_signaling_grant
from telehealth.services import (
    guest_presence_mark,
    guest_remove,
    participant_mute_set,
    relay_token_issue,
    visit_presence_mark,
)

logger = logging.getLogger(__name__)

# Channel-layer message types between the sockets of one visit (all carry "sender": the sending socket's channel).
RELAY = "visit.relay"  # {"text": relayed JSON}
PEER_JOINED = "visit.peer_joined"  # {"participant_id", "role"}
PEER_PRESENT = "visit.peer_present"  # {"participant_id", "role"}, sent to the newcomer's channel only
PEER_LEFT = "visit.peer_left"  # {"participant_id"}
# From telehealth services after commit (telehealth/channels.py): ``visit.state`` {"status"}, ``visit.mode`` {"mode"},
# ``visit.roster`` {"participants"}, ``visit.removed`` {"participant_id"}, ``visit.frame`` {"frame"} (inbox only).
GUEST_SESSION_KEY = "telehealth_guests"

_NO_DB_HANDLERS = frozenset(
    {
        "websocket.receive",
        RELAY,
        PEER_JOINED,
        PEER_PRESENT,
        PEER_LEFT,
        "visit.state",
        "visit.mode",
        "visit.roster",
        "visit.removed",
        "visit.frame",
    }
)


class VisitSignalingConsumer(AsyncWebsocketConsumer):
    """Relays signaling between the participants of one visit; never interprets SDP and never stores anything.

    Who may call: a signed-in browser that is the visit's patient or practitioner, or a browser whose session
    consumed a guest invitation to the visit (``session["telehealth_guests"]``; it may be anonymous). One
    ``visit_signaling_grant`` call decides; otherwise only telehealth services are called (presence, and the
    practitioner's control frames). Invariants:

    - a frame reaches the *other* participants of the visit only: it is sent to their inbox groups
      (``<visit group>.<participant_id>``), and the sender's channel, which is in every message, is skipped; it
      arrives in the order its sender sent it (one socket's frames are published one after another on one Redis
      connection, and each receiver handles its channel's messages in order);
    - direct ``signal`` frames go between the patient and the practitioner only, and only while the visit is
      ``in-progress`` as last learnt from the grant or a ``visit.state`` message; otherwise the sender gets
      ``not_admitted`` and the socket stays open; guests never send direct signals (``not_allowed``);
    - ``signal`` frames ``to: "relay"`` go to the relay group with a fresh relay token, only in relay mode, while
      the visit is in progress and the sender is admitted (else ``not_admitted``/``not_allowed``, socket open);
    - ``control`` frames are the practitioner's (anyone else gets ``not_allowed``) and call telehealth services;
    - a removed guest's sockets are closed with 4411 and its reconnects refused with 4411;
    - a malformed, oversized or flooding socket is closed with its code; this never touches the visit or the
      other participant's socket, which only sees ``peer-left``;
    - a participant's newer socket replaces its older one (4409), so a reload never leaves a ghost peer behind;
    - nothing of a frame's content (SDP, ICE candidates) and no PHI is logged: ids, roles and codes only.
    """

    grant: SignalingGrant | None
    status: str
    mode: str
    admitted: bool
    multiparty: bool
    roster: list[dict[str, Any]]
    group: str | None
    peers: dict[str, str]
    replaced: bool
    closing: bool

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections (a thread-pool hop) before every handler. These handlers make
        # no query of their own (database_sync_to_async cleans up around the presence call), and the hop would
        # double the cost of relaying a frame.
        if message["type"] in _NO_DB_HANDLERS:
            handler = getattr(self, message["type"].replace(".", "_"))
            await handler(message)
            return
        await super().dispatch(message)

    # --- lifecycle ------------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        self.grant, self.group, self.status = None, None, ""
        self.mode, self.admitted, self.multiparty, self.roster = "direct", False, False, []
        self.peers, self.replaced, self.closing = {}, False, False
        self.bucket = vp.TokenBucket()
        user = self.scope.get("user")
        guest_ids = self._session_guest_ids()
        authenticated = user is not None and user.is_authenticated
        if not authenticated and not guest_ids:
            await self._refuse(vp.CLOSE_NOT_AUTHENTICATED)
            return
        visit_id = vp.canonical_visit_id(str(self.scope["url_route"]["kwargs"].get("visit_id", "")))
        if visit_id is None:
            await self._refuse(vp.CLOSE_FORBIDDEN)
            return
        # Join before reading the grant: a visit.state sent meanwhile waits in this socket's inbox and is applied
        # after the grant's status, so the socket never keeps a stale status. Until the grant is set, every group
        # handler ignores what arrives.
        self.group = visit_channel_group(visit_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        grant = await database_sync_to_async(visit_signaling_grant)(
            user=user if authenticated else None, visit_id=visit_id, guest_invitation_ids=guest_ids
        )
        if grant is None:
            await self._refuse(vp.CLOSE_FORBIDDEN)
            return
        if grant.removed:
            await self._refuse(vp.CLOSE_REMOVED)
            return
        if grant.status == vp.STATUS_FINISHED:
            await self._refuse(vp.CLOSE_VISIT_ENDED)
            return
        self.grant, self.status, self.mode = grant, grant.status, grant.mode
        self.admitted, self.multiparty = grant.admitted, grant.multiparty
        self.roster = [entry.wire() for entry in grant.roster]
        # The inbox: relayed frames for this participant. Joined before the announcement below, so a peer that
        # learns of this socket can already reach it.
        await self.channel_layer.group_add(self._inbox(grant.participant_id), self.channel_name)
        await self.accept()
        await self._mark_present(True)  # before welcome: once welcomed, the queue shows the participant connected
        # Announce before welcoming: a peer that connects after this socket's welcome then learns of it by
        # peer-present only, never by both frames.
        await self._group_send(
            PEER_JOINED, participant_id=grant.participant_id, role=grant.role, name=grant.display_name
        )
        await self.send_json(
            vp.welcome_frame(
                role=grant.role,
                participant_id=grant.participant_id,
                status=grant.status,
                mode=grant.mode,
                name=grant.display_name,
            )
        )
        await self._send_roster()
        logger.info("visit socket open: visit=%s participant=%s", grant.visit_id, grant.participant_id)

    async def disconnect(self, code: int) -> None:
        grant = self.grant
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            if grant is not None:
                await self.channel_layer.group_discard(self._inbox(grant.participant_id), self.channel_name)
        if grant is None:
            return
        self.grant = None
        logger.info(
            "visit socket closed: visit=%s participant=%s code=%s%s",
            grant.visit_id,
            grant.participant_id,
            code,
            " (replaced)" if self.replaced else "",
        )
        if self.replaced:
            return  # the participant is still here, on its newer socket
        # Presence first, then peer-left: a newer socket of the same participant re-marks presence on that
        # peer-left, so the last write is always "present" while one socket remains.
        await self._mark_present(False, grant)
        await self._group_send(PEER_LEFT, participant_id=grant.participant_id)

    # --- client frames --------------------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        grant = self.grant
        if grant is None or self.closing:
            return  # frames still in flight after a close
        if not self.bucket.allow():
            await self._reject(
                vp.FrameRejected(vp.CLOSE_RATE_LIMITED, "rate_limited", "Too many frames; reconnect with backoff.")
            )
            return
        try:
            frame = vp.parse_client_frame(text_data, bytes_data)
        except vp.FrameRejected as err:
            await self._reject(err)
            return
        if frame.kind == "ping":
            await self.send_json(vp.PONG)
            return
        if frame.kind == "control":
            await self._control(grant, frame)
            return
        if frame.to_relay:
            await self._to_relay(grant, frame)
            return
        assert frame.relay is not None
        if frame.kind == "signal":
            if grant.participant_id not in vp.PARTICIPANT_IDS:
                await self.send_json(vp.not_allowed_frame(vp.NOT_ALLOWED_DETAILS["direct_guest"]))
                return
            if not vp.signal_allowed(self.status):
                await self.send_json(vp.not_admitted_frame())
                return
            # Browser-to-browser signaling is between the patient and the practitioner only.
            targets = set(vp.PARTICIPANT_IDS)
        else:
            targets = self.peers.keys() | vp.PARTICIPANT_IDS
        message = {
            "type": RELAY,
            "sender": self.channel_name,
            "text": vp.relayed_text(frame.relay, sender=grant.participant_id),
        }
        # To the other participants' inboxes, not the visit group: the visit group would also deliver every frame
        # to this socket's own daphne only to be skipped there (a Redis delivery and a dispatch per frame).
        for participant_id in targets - {grant.participant_id}:
            await self.channel_layer.group_send(self._inbox(participant_id), message)

    async def _to_relay(self, grant: SignalingGrant, frame: vp.ClientFrame) -> None:
        """A signal for the media relay: checked against the visit's live state, then handed to the relay group
        with a fresh token naming this participant (the relay trusts nothing else)."""
        assert frame.pc is not None
        assert frame.relay is not None
        refusal = vp.relay_signal_refusal(
            status=self.status,
            mode=self.mode,
            admitted=self.admitted,
            pc=frame.pc,
            participant_id=grant.participant_id,
        )
        if refusal == "not_admitted":
            await self.send_json(vp.not_admitted_frame())
            return
        if refusal is not None:
            own = frame.pc == f"sub:{grant.participant_id}"
            await self.send_json(vp.not_allowed_frame(vp.NOT_ALLOWED_DETAILS["own_media" if own else "direct_mode"]))
            return
        await self.channel_layer.group_send(
            RELAY_GROUP,
            {
                "type": RELAY_SIGNAL,
                "visit_id": grant.visit_id,
                "participant_id": grant.participant_id,
                "role": grant.role,
                "name": grant.display_name,
                "inbox": participant_inbox(grant.visit_id, grant.participant_id),
                "token": relay_token_issue(visit_id=grant.visit_id, participant_id=grant.participant_id),
                "frame": frame.relay,
            },
        )

    async def _control(self, grant: SignalingGrant, frame: vp.ClientFrame) -> None:
        """The practitioner mutes, unmutes or removes a participant through the telehealth services (which push
        the roster, the muted notice, the removal and the relay's orders after commit)."""
        if grant.role != "practitioner":
            await self.send_json(vp.not_allowed_frame(vp.NOT_ALLOWED_DETAILS["control"]))
            return
        user = self.scope["user"]
        try:
            if frame.action == "remove":
                await database_sync_to_async(guest_remove)(
                    actor=user, visit_id=grant.visit_id, participant_id=frame.target
                )
            else:
                await database_sync_to_async(participant_mute_set)(
                    actor=user, visit_id=grant.visit_id, participant_id=frame.target, audio=frame.action == "unmute"
                )
        except TelehealthError as exc:
            logger.info("visit control refused: visit=%s action=%s code=%s", grant.visit_id, frame.action, exc.code)
            await self.send_json(vp.error_frame(exc.code, exc.detail))

    # --- channel-layer messages -----------------------------------------------------------------------------------

    async def visit_relay(self, message: dict[str, Any]) -> None:
        if self._mine_or_inactive(message):
            return
        with contextlib.suppress(Disconnected):
            await self.send(text_data=message["text"])

    async def visit_peer_joined(self, message: dict[str, Any]) -> None:
        if self._mine_or_inactive(message):
            return
        assert self.grant is not None
        participant_id, sender = message["participant_id"], message["sender"]
        if participant_id == self.grant.participant_id:
            # The same participant opened a newer socket (reload, second tab, network change): it takes over.
            self.replaced = True
            await self._close(vp.CLOSE_REPLACED)
            return
        if self.peers.get(participant_id) != sender:  # sockets connecting at once may meet both ways
            self.peers[participant_id] = sender
            await self.send_json(
                vp.peer_frame(
                    "peer-joined", participant_id=participant_id, role=message["role"], name=message.get("name")
                )
            )
            await self._send_roster()
        await self.channel_layer.send(
            sender,
            {
                "type": PEER_PRESENT,
                "sender": self.channel_name,
                "participant_id": self.grant.participant_id,
                "role": self.grant.role,
                "name": self.grant.display_name,
            },
        )

    async def visit_peer_present(self, message: dict[str, Any]) -> None:
        if self._mine_or_inactive(message):
            return
        participant_id = message["participant_id"]
        if self.peers.get(participant_id) == message["sender"]:
            return  # already announced by its peer-joined
        self.peers[participant_id] = message["sender"]
        await self.send_json(
            vp.peer_frame("peer-present", participant_id=participant_id, role=message["role"], name=message.get("name"))
        )
        await self._send_roster()

    async def visit_peer_left(self, message: dict[str, Any]) -> None:
        if self._mine_or_inactive(message):
            return
        assert self.grant is not None
        participant_id = message["participant_id"]
        if participant_id == self.grant.participant_id:
            # An older socket of this participant closed after this one joined: it is still here.
            await self._mark_present(True)
            return
        if self.peers.get(participant_id) != message["sender"]:
            return  # an older socket of that peer, already replaced by the one we know
        del self.peers[participant_id]
        await self.send_json(vp.peer_left_frame(participant_id=participant_id))
        await self._send_roster()

    async def visit_state(self, message: dict[str, Any]) -> None:
        """From telehealth services after commit: the visit's new status (admit, end, transfer, leave)."""
        if self.grant is None or self.closing:
            return
        self.status = str(message["status"])
        await self.send_json(vp.visit_state_frame(status=self.status))
        if self.status == vp.STATUS_FINISHED:
            await self._close(vp.CLOSE_VISIT_ENDED)

    async def visit_mode(self, message: dict[str, Any]) -> None:
        """From telehealth after commit: the visit's media mode (direct -> relay); browsers switch without reload."""
        if self.grant is None or self.closing:
            return
        self.mode = str(message["mode"])
        if self.mode == vp.MODE_RELAY:
            self.multiparty = True
        await self.send_json(vp.visit_mode_frame(mode=self.mode))

    async def visit_roster(self, message: dict[str, Any]) -> None:
        """From telehealth after commit: who is in the visit (admitted, muted); also this guest's admission."""
        if self.grant is None or self.closing:
            return
        self.roster = list(message["participants"])
        for entry in self.roster:
            if entry.get("participant_id") == self.grant.participant_id:
                self.admitted = bool(entry.get("admitted")) or self.grant.role == "practitioner"
            elif str(entry.get("participant_id", "")).startswith("guest-"):
                self.multiparty = True
        if self.grant.role == "patient":
            self.admitted = True  # the patient's signaling is gated by the visit's status, not by the roster
        await self._send_roster()

    async def visit_removed(self, message: dict[str, Any]) -> None:
        """From telehealth after commit: a guest was removed; its own sockets close with 4411."""
        if self.grant is None or self.closing:
            return
        if message.get("participant_id") == self.grant.participant_id:
            logger.info("visit socket removed: visit=%s participant=%s", self.grant.visit_id, self.grant.participant_id)
            await self.send_json(vp.removed_frame())
            await self._close(vp.CLOSE_REMOVED)

    async def visit_frame(self, message: dict[str, Any]) -> None:
        """From telehealth after commit, to this participant's inbox: a server frame sent as is (``muted``)."""
        if self.grant is None or self.closing:
            return
        await self.send_json(dict(message["frame"]))

    # --- helpers --------------------------------------------------------------------------------------------------

    def _inbox(self, participant_id: str) -> str:
        return f"{self.group}.{participant_id}"

    def _session_guest_ids(self) -> list[str]:
        """The guest invitations this browser session consumed (telehealth stores them in the Django session)."""
        session = self.scope.get("session")
        try:
            raw = session.get(GUEST_SESSION_KEY, []) if session is not None else []
        except Exception:
            logger.warning("visit socket: session unreadable", exc_info=True)
            return []
        return [i for i in raw if isinstance(i, str)][:10] if isinstance(raw, list) else []

    async def _send_roster(self) -> None:
        """The roster with ``connected`` as this socket knows it; only for multi-party visits (a plain 1:1 visit in
        direct mode never gets roster frames)."""
        if self.grant is None or not self.multiparty or not self.roster:
            return
        connected = set(self.peers) | {self.grant.participant_id}
        await self.send_json(vp.roster_frame(participants=self.roster, connected=connected))

    def _mine_or_inactive(self, message: dict[str, Any]) -> bool:
        return self.grant is None or self.closing or message.get("sender") == self.channel_name

    async def _group_send(self, type_: str, **fields: str | None) -> None:
        assert self.group is not None
        await self.channel_layer.group_send(self.group, {"type": type_, "sender": self.channel_name, **fields})

    async def _mark_present(self, present: bool, grant: SignalingGrant | None = None) -> None:
        """The patient's socket marks the patient's presence (the queue, the grace period); a guest's socket marks
        the guest's (the practitioner's guest list). The practitioner's socket marks nothing."""
        grant = grant or self.grant
        if grant is None or grant.role == "practitioner":
            return
        try:
            if grant.role == "patient":
                await database_sync_to_async(visit_presence_mark)(
                    visit_id=grant.visit_id, user_id=self.scope["user"].pk, present=present
                )
            elif grant.invitation_id is not None:
                await database_sync_to_async(guest_presence_mark)(invitation_id=grant.invitation_id, present=present)
        except Exception:
            # Signaling goes on without it; the queue shows a stale "connected" until the next mark.
            logger.warning("visit presence mark failed: visit=%s present=%s", grant.visit_id, present, exc_info=True)

    async def _refuse(self, code: int) -> None:
        """Accept, then close with ``code``: closing before accepting would become an HTTP 403 and lose the code."""
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
        logger.info("visit socket refused: code=%s", code)
        await self.accept()
        await self._close(code)

    async def _reject(self, err: vp.FrameRejected) -> None:
        assert self.grant is not None
        logger.info(
            "visit socket frame rejected: visit=%s participant=%s code=%s close=%s",
            self.grant.visit_id,
            self.grant.participant_id,
            err.code,
            err.close_code,
        )
        await self.send_json(err.frame())
        await self._close(err.close_code)

    async def _close(self, code: int) -> None:
        self.closing = True
        with contextlib.suppress(Disconnected):
            await self.close(code=code)

    async def send_json(self, content: dict[str, Any]) -> None:
        # The browser may leave while frames are queued for it; the disconnect that follows cleans up.
        with contextlib.suppress(Disconnected):
            await self.send(text_data=vp.dumps(content))
