"""Wording of the staff wait alert (telehealth): by SMS and email, with no patient name or any other detail about the
patient (a text on a clinician's phone is not a place for PHI). Replaces 0002's email wording, which named the
patient."""

from django.db import migrations

TEMPLATES = [
    # (kind, channel, language, subject, body)
    (
        "staff_wait_alert",
        "sms",
        "en",
        "",
        "A patient has waited {minutes} minutes in your virtual waiting room. {clinic_url}",
    ),
    (
        "staff_wait_alert",
        "email",
        "en",
        "A patient has waited {minutes} minutes",
        "A patient has waited {minutes} minutes in your virtual waiting room (appointment at {time}).\n\n"
        "Open your virtual clinic: {clinic_url}\n",
    ),
]
PREVIOUS_EMAIL = (
    "A patient has been waiting {minutes} minutes",
    "A patient ({patient_first_name}) has been waiting {minutes} minutes for their {time} visit.",
)


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for kind, channel, language, subject, body in TEMPLATES:
        MessageTemplate.objects.update_or_create(
            kind=kind, channel=channel, language=language, defaults={"subject": subject, "body": body}
        )


def unseed(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    MessageTemplate.objects.filter(kind="staff_wait_alert", channel="sms", language="en").delete()
    MessageTemplate.objects.filter(kind="staff_wait_alert", channel="email", language="en").update(
        subject=PREVIOUS_EMAIL[0], body=PREVIOUS_EMAIL[1]
    )


class Migration(migrations.Migration):
    dependencies = [("notifications", "0003_staff_contact")]
    operations = [migrations.RunPython(seed, unseed)]
