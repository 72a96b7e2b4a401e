"""Default wording per message kind, channel and language (the clinic edits it in the admin). No clinical details:
SMS say when and with whom, never why."""

from django.db import migrations

TEMPLATES = [
    # (kind, channel, language, subject, body)
    (
        "reminder",
        "sms",
        "en",
        "",
        "Reminder: {clinic} appointment with {practitioner} on {when}. Reply C to confirm, R to reschedule, X to cancel.",
    ),
    (
        "reminder",
        "email",
        "en",
        "Your appointment on {when}",
        "Hello {first_name},\n\nThis is a reminder of your appointment with {practitioner} at {clinic} on {when}.\n\n"
        "To change it, sign in to Consulta or call the clinic.\n",
    ),
    (
        "reminder",
        "sms",
        "es",
        "",
        "Recordatorio: cita en {clinic} con {practitioner} el {when}. Responda C para confirmar, R para cambiar, "
        "X para cancelar.",
    ),
    (
        "reminder",
        "email",
        "es",
        "Su cita del {when}",
        "Hola {first_name}:\n\nLe recordamos su cita con {practitioner} en {clinic} el {when}.\n",
    ),
    (
        "reminder",
        "sms",
        "fr",
        "",
        "Rappel : rendez-vous {clinic} avec {practitioner} le {when}. Répondez C pour confirmer, R pour déplacer, "
        "X pour annuler.",
    ),
    (
        "reminder",
        "email",
        "fr",
        "Votre rendez-vous du {when}",
        "Bonjour {first_name},\n\nNous vous rappelons votre rendez-vous avec {practitioner} ({clinic}) le {when}.\n",
    ),
    (
        "reminder",
        "sms",
        "de",
        "",
        "Erinnerung: Termin {clinic} bei {practitioner} am {when}. Antworten Sie C (bestätigen), R (verschieben), "
        "X (absagen).",
    ),
    (
        "reminder",
        "email",
        "de",
        "Ihr Termin am {when}",
        "Guten Tag {first_name},\n\nwir erinnern an Ihren Termin bei {practitioner} ({clinic}) am {when}.\n",
    ),
    (
        "video_checkin",
        "sms",
        "en",
        "",
        "Your video visit with {practitioner} starts at {time}. Check in: {checkin_url} Test your camera: {device_check_url}",
    ),
    (
        "video_checkin",
        "email",
        "en",
        "Your video visit starts at {time}",
        "Hello {first_name},\n\nYour video visit with {practitioner} starts at {time}.\n\nCheck in: {checkin_url}\n"
        "Test your camera and microphone first: {device_check_url}\n",
    ),
    (
        "staff_wait_alert",
        "email",
        "en",
        "A patient has been waiting {minutes} minutes",
        "A patient ({patient_first_name}) has been waiting {minutes} minutes for their {time} visit.",
    ),
    ("manual", "sms", "en", "", "{text}"),
    ("manual", "email", "en", "{subject}", "{text}"),
]


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for kind, channel, language, subject, body in TEMPLATES:
        MessageTemplate.objects.update_or_create(
            kind=kind, channel=channel, language=language, defaults={"subject": subject, "body": body}
        )


def unseed(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for kind, channel, language, _subject, _body in TEMPLATES:
        MessageTemplate.objects.filter(kind=kind, channel=channel, language=language).delete()


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_outbox")]
    operations = [migrations.RunPython(seed, unseed)]
