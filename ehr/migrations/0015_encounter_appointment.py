"""Encounter.appointment_id (FHIR Encounter.appointment): the scheduling appointment a planned visit was booked as.
A plain id (ehr depends on no other app), positive when set, at most one encounter per appointment. Existing
encounters keep NULL: scheduling's own Appointment.encounter_id still links them the other way."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ehr", "0014_patient_merge_integrity"),
    ]

    operations = [
        migrations.AddField(
            model_name="encounter",
            name="appointment_id",
            field=models.BigIntegerField(
                blank=True,
                help_text="The scheduling appointment this visit was booked as (FHIR appointment)",
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="encounter",
            constraint=models.UniqueConstraint(fields=("appointment_id",), name="encounter_one_per_appointment"),
        ),
        migrations.AddConstraint(
            model_name="encounter",
            constraint=models.CheckConstraint(
                condition=models.Q(("appointment_id__isnull", True), ("appointment_id__gte", 1), _connector="OR"),
                name="encounter_appointment_id_positive",
            ),
        ),
    ]
