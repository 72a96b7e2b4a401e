"""Intake questions of an appointment type and the validation of a patient's answers."""

from __future__ import annotations

from typing import Any

from telehealth.dto import IntakeQuestionRef
from telehealth.errors import InvalidInput
from telehealth.models import IntakeQuestion

DEFAULT_QUESTIONS: tuple[IntakeQuestionRef, ...] = (
    IntakeQuestionRef(id="reason", text="What is the reason for your visit?", kind="text", required=True),
    IntakeQuestionRef(id="private", text="Are you somewhere private?", kind="yesno", required=True),
    IntakeQuestionRef(
        id="medications_changed", text="Have your current medications changed?", kind="yesno", required=False
    ),
)
ANSWER_MAX_LENGTH = 1000


def intake_questions_for(*, appointment_type_id: int) -> tuple[IntakeQuestionRef, ...]:
    """The active questions configured for the type, in order; the telehealth defaults when there are none."""
    rows = IntakeQuestion.objects.filter(appointment_type_id=appointment_type_id, active=True).order_by(
        "position", "id"
    )
    configured = tuple(
        IntakeQuestionRef(id=q.key, text=q.text, kind="yesno" if q.kind == "yesno" else "text", required=q.required)
        for q in rows
    )
    return configured or DEFAULT_QUESTIONS


def intake_validate(*, questions: tuple[IntakeQuestionRef, ...], answers: Any) -> dict[str, Any]:
    """The answers as stored on the visit: ``{"answers": [{"id", "question", "answer"}]}`` in question order.
    Text answers are stripped strings of at most 1000 characters, yes/no answers booleans; required questions must
    be answered; unknown keys are refused. Raises ``InvalidInput`` naming each bad answer."""
    if not isinstance(answers, dict):
        raise InvalidInput({"answers": ["Send the answers as an object keyed by question id."]})
    known = {q.id for q in questions}
    errors: dict[str, list[str]] = {}
    for key in answers:
        if key not in known:
            errors[f"answers.{key}"] = ["Unknown question."]
    stored: list[dict[str, Any]] = []
    for question in questions:
        value = answers.get(question.id)
        field = f"answers.{question.id}"
        if question.kind == "yesno":
            if value is None:
                if question.required:
                    errors[field] = ["Answer yes or no."]
                continue
            if not isinstance(value, bool):
                errors[field] = ["Answer yes (true) or no (false)."]
                continue
        else:
            if value is None:
                value = ""
            if not isinstance(value, str):
                errors[field] = ["Answer in words."]
                continue
            value = value.strip()
            if len(value) > ANSWER_MAX_LENGTH:
                errors[field] = [f"At most {ANSWER_MAX_LENGTH} characters."]
                continue
            if not value:
                if question.required:
                    errors[field] = ["This question needs an answer."]
                continue
        stored.append({"id": question.id, "question": question.text, "answer": value})
    if errors:
        raise InvalidInput(errors)
    return {"answers": stored}
