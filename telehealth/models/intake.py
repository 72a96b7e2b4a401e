"""Intake questions asked at check-in, per appointment type (telehealth's defaults when none are configured)."""

from __future__ import annotations

from django.db import models


class QuestionKind(models.TextChoices):
    TEXT = "text", "Free text"
    YESNO = "yesno", "Yes or no"


class IntakeQuestion(models.Model):
    """A question for check-ins of appointment type ``appointment_type_id`` (an id: the type belongs to
    scheduling). ``key`` is the answer's key in ``Visit.intake``; unique per type (UNIQUE). When a type has no
    active question, ``telehealth.services.intake.DEFAULT_QUESTIONS`` are asked."""

    appointment_type_id = models.BigIntegerField()
    key = models.SlugField(max_length=50)
    text = models.CharField(max_length=300)
    kind = models.CharField(max_length=10, choices=QuestionKind.choices, default=QuestionKind.TEXT)
    required = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["appointment_type_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["appointment_type_id", "key"], name="intake_question_key_per_type"),
            models.CheckConstraint(condition=models.Q(kind__in=QuestionKind.values), name="intake_question_kind"),
        ]

    def __str__(self) -> str:
        return self.text
