"""Code systems of the clinical record: ICD-10-CM (conditions), LOINC + UCUM (observations).

ICD-10-CM comes from the maintained ``simple-icd-10-cm`` library (the CDC's release tables; codes and descriptions
are never typed in by hand here). LOINC codes allowed for observations are a curated table: each code has its one
UCUM unit and the physiologically possible range of its value, so an impossible reading (a heart rate of 500/min)
is refused before it reaches the record.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType

ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"

_ICD_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")


@functools.cache
def _icd10cm() -> ModuleType:
    # Loaded on first use (about 1.5 s: it parses the full code table). The library reads its data through the
    # deprecated importlib.resources.read_text; that warning is the library's, not ours.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm  # type: ignore[import-untyped]  # the library ships no type information

    module: ModuleType = simple_icd_10_cm
    return module


@dataclass(frozen=True)
class IcdCode:
    code: str  # with its dot, e.g. "E11.9"
    display: str
    billable: bool  # a leaf of the classification (the level claims require)


def icd10cm_lookup(raw: str) -> IcdCode | None:
    """The ICD-10-CM code ``raw`` (case, surrounding spaces and the dot optional), or None when it is not a code.

    Chapters and blocks ("E08-E13") are not codes a condition can carry and are refused; categories (``I10``, ``E11``)
    and their subcategories are accepted.
    """
    value = raw.strip().upper()
    if not _ICD_SHAPE.match(value):
        return None
    cm = _icd10cm()
    if not cm.is_valid_item(value) or cm.is_chapter_or_block(value):
        return None
    code = str(cm.add_dot(value))
    return IcdCode(code=code, display=str(cm.get_description(code)), billable=bool(cm.is_leaf(code)))


class ObservationCategory:
    VITAL_SIGNS = "vital-signs"
    LABORATORY = "laboratory"


@dataclass(frozen=True)
class ObservationCode:
    """One LOINC code an observation may carry: its UCUM unit and the range a living person's value can be in."""

    code: str
    display: str
    unit: str  # UCUM case-sensitive code
    minimum: Decimal
    maximum: Decimal
    category: str
    decimals: int  # precision the value is stored with


# The bounds are what is physiologically possible (including extreme but survivable cases), not normal ranges:
# they catch typos and wrong units (a temperature in Fahrenheit, a weight in grams), never unusual patients.
OBSERVATION_CODES: dict[str, ObservationCode] = {
    c.code: c
    for c in (
        ObservationCode("8867-4", "Heart rate", "/min", Decimal(20), Decimal(300), ObservationCategory.VITAL_SIGNS, 0),
        ObservationCode(
            "8480-6", "Systolic blood pressure", "mm[Hg]", Decimal(40), Decimal(300), ObservationCategory.VITAL_SIGNS, 0
        ),
        ObservationCode(
            "8462-4",
            "Diastolic blood pressure",
            "mm[Hg]",
            Decimal(20),
            Decimal(200),
            ObservationCategory.VITAL_SIGNS,
            0,
        ),
        ObservationCode(
            "8310-5", "Body temperature", "Cel", Decimal(25), Decimal(45), ObservationCategory.VITAL_SIGNS, 1
        ),
        ObservationCode(
            "9279-1", "Respiratory rate", "/min", Decimal(4), Decimal(80), ObservationCategory.VITAL_SIGNS, 0
        ),
        ObservationCode(
            "59408-5",
            "Oxygen saturation in arterial blood by pulse oximetry",
            "%",
            Decimal(40),
            Decimal(100),
            ObservationCategory.VITAL_SIGNS,
            0,
        ),
        ObservationCode(
            "29463-7", "Body weight", "kg", Decimal("0.3"), Decimal(650), ObservationCategory.VITAL_SIGNS, 2
        ),
        ObservationCode("8302-2", "Body height", "cm", Decimal(20), Decimal(275), ObservationCategory.VITAL_SIGNS, 1),
        ObservationCode(
            "39156-5", "Body mass index (BMI)", "kg/m2", Decimal(7), Decimal(250), ObservationCategory.VITAL_SIGNS, 1
        ),
        ObservationCode(
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            "mg/dL",
            Decimal(5),
            Decimal(2700),
            ObservationCategory.LABORATORY,
            0,
        ),
        ObservationCode(
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            "%",
            Decimal(2),
            Decimal(25),
            ObservationCategory.LABORATORY,
            1,
        ),
    )
}

RXNORM_PATTERN = re.compile(r"^[0-9]{1,10}$")
