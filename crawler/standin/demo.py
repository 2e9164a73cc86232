"""Team-written demo records for the offline demo: fictional, realistic-looking ketamine studies.

Why: `make run` without network crawls the stand-in, and the dashboard should then show a
believable spread of designs, outcomes, routes, comparators and years. Every record is built
from our own templates and a seeded RNG; every title starts with "[Demo] " and every abstract
says the record is fictional. PMIDs start at 99,900,001 and rise with the entrez date.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta

from crawler.standin.records import StandinRecord

DEMO_START_PMID = 99_900_001
DEMO_SEED = 20061
DISCLAIMER = (
    "NOTE: Fictional demo data written for the Ketamine Evidence Atlas; this is not a real study."
)


@dataclass(frozen=True)
class Condition:
    key: str
    name: str  # as in a title: "treatment-resistant depression"
    population: str  # "adults with treatment-resistant depression"
    scale: str
    mesh: tuple[str, ...]
    in_scope: bool = True


CONDITIONS = {
    c.key: c
    for c in (
        Condition(
            "trd",
            "treatment-resistant depression",
            "adults with treatment-resistant depression",
            "MADRS scores",
            ("Depressive Disorder, Treatment-Resistant",),
        ),
        Condition(
            "mdd",
            "major depressive disorder",
            "adults with major depressive disorder",
            "HAM-D scores",
            ("Depressive Disorder, Major",),
        ),
        Condition(
            "bipolar",
            "bipolar depression",
            "patients with bipolar I or II depression",
            "MADRS scores",
            ("Bipolar Disorder",),
        ),
        Condition(
            "suicidality",
            "suicidal ideation",
            "depressed inpatients with acute suicidal ideation",
            "Scale for Suicide Ideation scores",
            ("Suicidal Ideation", "Depression"),
        ),
        Condition(
            "postpartum",
            "postpartum depression",
            "women undergoing elective caesarean delivery",
            "EPDS scores",
            ("Depression, Postpartum",),
        ),
        Condition(
            "ptsd",
            "post-traumatic stress disorder",
            "adults with chronic PTSD",
            "CAPS-5 scores",
            ("Stress Disorders, Post-Traumatic",),
        ),
        Condition(
            "ptsd_vet",
            "PTSD in veterans",
            "military veterans with PTSD and comorbid depression",
            "PCL-5 scores",
            ("Stress Disorders, Post-Traumatic", "Veterans"),
        ),
        Condition(
            "gad",
            "generalized anxiety disorder",
            "adults with refractory generalized anxiety disorder",
            "HAM-A scores",
            ("Anxiety Disorders",),
        ),
        Condition(
            "social",
            "social anxiety disorder",
            "adults with social anxiety disorder",
            "LSAS scores",
            ("Phobia, Social",),
        ),
        Condition(
            "ocd",
            "obsessive-compulsive disorder",
            "unmedicated adults with OCD",
            "Y-BOCS scores",
            ("Obsessive-Compulsive Disorder",),
        ),
        Condition(
            "adolescent",
            "adolescent depression",
            "adolescents with treatment-resistant depression",
            "CDRS-R scores",
            ("Depression", "Adolescent"),
        ),
        Condition(
            "older",
            "late-life depression",
            "adults aged 60 years or older with depression",
            "MADRS scores",
            ("Depression", "Aged"),
        ),
        Condition(
            "anaesthesia",
            "induction of general anaesthesia",
            "adults undergoing elective abdominal surgery",
            "the fall in mean arterial pressure",
            ("Anesthesia, General",),
            in_scope=False,
        ),
        Condition(
            "analgesia",
            "postoperative pain after spinal fusion",
            "adults undergoing lumbar spinal fusion",
            "48-hour opioid consumption",
            ("Pain, Postoperative", "Analgesics, Opioid"),
            in_scope=False,
        ),
        Condition(
            "sedation",
            "preoperative sedation in children",
            "children aged 2 to 8 years before tonsillectomy",
            "separation anxiety at induction",
            ("Preanesthetic Medication", "Child"),
            in_scope=False,
        ),
        Condition(
            "emergency",
            "prehospital analgesia for trauma",
            "adults with acute traumatic pain in the ambulance",
            "pain scores at 15 minutes",
            ("Analgesia", "Emergency Medical Services"),
            in_scope=False,
        ),
    )
}
ROUTES = {
    "iv": ("intravenous", "infusions"),
    "intranasal": ("intranasal", "doses"),
    "oral": ("oral", "doses"),
    "im": ("intramuscular", "injections"),
}
COMPARATORS = {
    "placebo": "saline placebo",
    "midazolam": "midazolam (active placebo)",
    "ect": "electroconvulsive therapy",
    "active_drug": "propofol",
    "none": None,
}
JOURNALS = (
    ("Atlas Journal of Demo Psychiatry", "Atlas J Demo Psychiatry"),
    ("Demo Reports in Mood Disorders", "Demo Rep Mood Disord"),
    ("Illustrative Neuropsychopharmacology", "Illus Neuropsychopharmacol"),
    ("Example Anaesthesia and Analgesia Review", "Example Anaesth Analg Rev"),
)
SURNAMES = (
    "Ashdown",
    "Brightwater",
    "Calloway",
    "Dunmore",
    "Everhart",
    "Fairbrook",
    "Galloway",
    "Hollingsworth",
    "Ivanova",
    "Jankowski",
    "Kessler",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quintero",
    "Rasmussen",
    "Sandoval",
    "Thorne",
    "Ueda",
    "Valdez",
    "Whitcombe",
    "Yilmaz",
    "Zeller",
)

# (design, condition, drug, route, comparator, outcome, psychotherapy); the order is the
# publication order (oldest first). The last eight are recent and not yet MeSH-indexed.
PLAN: tuple[tuple[str, str, str, str, str, str, bool], ...] = (
    ("rct", "trd", "ketamine", "iv", "placebo", "beneficial", False),
    ("case_report", "trd", "ketamine", "iv", "none", "beneficial", False),
    ("rct", "anaesthesia", "ketamine", "iv", "active_drug", "no_benefit", False),
    ("open_label", "bipolar", "ketamine", "iv", "none", "beneficial", False),
    ("animal", "mdd", "ketamine", "iv", "placebo", "beneficial", False),
    ("narrative_review", "mdd", "ketamine", "iv", "none", "not_reported", False),
    ("rct", "trd", "ketamine", "iv", "midazolam", "beneficial", False),
    ("cohort", "trd", "ketamine", "iv", "none", "mixed", False),
    ("rct", "analgesia", "ketamine", "iv", "placebo", "beneficial", False),
    ("rct", "ocd", "ketamine", "iv", "placebo", "beneficial", False),
    ("case_report", "ptsd", "ketamine", "im", "none", "beneficial", True),
    ("rct", "suicidality", "ketamine", "iv", "midazolam", "beneficial", False),
    ("systematic_review", "mdd", "ketamine", "iv", "placebo", "beneficial", False),
    ("rct", "ptsd", "ketamine", "iv", "midazolam", "mixed", False),
    ("animal", "ptsd", "ketamine", "iv", "placebo", "beneficial", False),
    ("rct", "sedation", "ketamine", "oral", "midazolam", "beneficial", False),
    ("open_label", "gad", "ketamine", "im", "none", "beneficial", False),
    ("rct", "trd", "ketamine", "iv", "ect", "no_benefit", False),
    ("narrative_review", "ptsd", "ketamine", "iv", "none", "not_reported", False),
    ("rct", "trd", "esketamine", "intranasal", "placebo", "beneficial", False),
    ("systematic_review", "bipolar", "ketamine", "iv", "placebo", "mixed", False),
    ("cohort", "mdd", "ketamine", "oral", "none", "beneficial", False),
    ("rct", "social", "ketamine", "iv", "placebo", "mixed", False),
    ("protocol", "trd", "ketamine", "iv", "ect", "not_reported", False),
    ("rct", "postpartum", "esketamine", "iv", "placebo", "beneficial", False),
    ("animal", "mdd", "arketamine", "iv", "placebo", "beneficial", False),
    ("rct", "trd", "esketamine", "intranasal", "placebo", "no_benefit", False),
    ("open_label", "ptsd_vet", "ketamine", "iv", "none", "beneficial", True),
    ("rct", "emergency", "ketamine", "intranasal", "active_drug", "no_benefit", False),
    ("cohort", "suicidality", "esketamine", "intranasal", "none", "mixed", False),
    ("systematic_review", "ptsd", "ketamine", "iv", "placebo", "mixed", False),
    ("rct", "adolescent", "ketamine", "iv", "midazolam", "beneficial", False),
    ("case_report", "ocd", "ketamine", "oral", "none", "mixed", False),
    ("rct", "mdd", "ketamine", "oral", "placebo", "beneficial", False),
    ("narrative_review", "trd", "esketamine", "intranasal", "none", "not_reported", False),
    ("rct", "postpartum", "esketamine", "iv", "placebo", "no_benefit", False),
    ("animal", "gad", "arketamine", "iv", "placebo", "beneficial", False),
    ("rct", "ptsd", "ketamine", "iv", "placebo", "beneficial", True),
    ("cohort", "trd", "esketamine", "intranasal", "none", "beneficial", False),
    ("systematic_review", "suicidality", "ketamine", "iv", "placebo", "beneficial", False),
    ("rct", "older", "ketamine", "iv", "midazolam", "no_benefit", False),
    ("open_label", "trd", "ketamine", "intranasal", "none", "beneficial", False),
    ("rct", "analgesia", "ketamine", "iv", "placebo", "mixed", False),
    ("protocol", "ptsd_vet", "ketamine", "iv", "placebo", "not_reported", True),
    ("cohort", "bipolar", "esketamine", "intranasal", "none", "mixed", False),
    ("rct", "gad", "ketamine", "oral", "placebo", "beneficial", False),
    ("case_report", "postpartum", "esketamine", "intranasal", "none", "beneficial", False),
    ("systematic_review", "trd", "esketamine", "intranasal", "placebo", "beneficial", False),
    ("animal", "ptsd", "arketamine", "iv", "placebo", "mixed", False),
    ("rct", "trd", "ketamine", "iv", "ect", "beneficial", False),
    ("narrative_review", "anaesthesia", "ketamine", "iv", "none", "not_reported", False),
    ("open_label", "adolescent", "esketamine", "intranasal", "none", "mixed", False),
    ("rct", "mdd", "ketamine", "iv", "placebo", "beneficial", True),
    ("cohort", "ptsd", "ketamine", "iv", "none", "beneficial", False),
    ("systematic_review", "anaesthesia", "ketamine", "iv", "placebo", "mixed", False),
    ("rct", "sedation", "ketamine", "intranasal", "midazolam", "no_benefit", False),
    ("protocol", "postpartum", "esketamine", "iv", "placebo", "not_reported", False),
    ("animal", "mdd", "esketamine", "iv", "placebo", "no_benefit", False),
    ("rct", "bipolar", "ketamine", "iv", "midazolam", "mixed", False),
    ("open_label", "ocd", "ketamine", "intranasal", "none", "no_benefit", False),
    ("narrative_review", "gad", "ketamine", "oral", "none", "not_reported", False),
    ("cohort", "older", "esketamine", "intranasal", "none", "beneficial", False),
    # recent, unindexed (no MeSH yet)
    ("rct", "trd", "arketamine", "oral", "placebo", "no_benefit", False),
    ("systematic_review", "ptsd", "ketamine", "iv", "placebo", "beneficial", False),
    ("case_report", "bipolar", "esketamine", "intranasal", "none", "mixed", False),
    ("rct", "suicidality", "esketamine", "intranasal", "placebo", "beneficial", False),
    ("protocol", "gad", "ketamine", "oral", "placebo", "not_reported", True),
    ("open_label", "mdd", "ketamine", "im", "none", "beneficial", True),
    ("rct", "analgesia", "esketamine", "iv", "placebo", "beneficial", False),
    ("narrative_review", "ocd", "ketamine", "iv", "none", "not_reported", False),
)
N_RECENT = 8
RETRACTED_INDEX = 17  # a fictional RCT that was later retracted
PUBLICATION_TYPES = {
    "rct": ("Journal Article", "Randomized Controlled Trial"),
    "systematic_review": ("Journal Article", "Systematic Review", "Meta-Analysis"),
    "open_label": ("Journal Article", "Clinical Trial"),
    "cohort": ("Journal Article", "Observational Study"),
    "case_report": ("Case Reports",),
    "narrative_review": ("Journal Article", "Review"),
    "animal": ("Journal Article",),
    "protocol": ("Journal Article", "Clinical Trial Protocol"),
}
ANIMAL_SCALES = {"ptsd": "contextual freezing", "gad": "open-arm avoidance"}
CASE_RESULTS = {
    "beneficial": "Symptoms remitted after the fourth treatment and stayed improved at three months.",
    "no_benefit": "No meaningful improvement followed, and treatment was stopped.",
    "mixed": "Symptoms improved for a few days after each treatment but returned within two weeks.",
}
NUMBER_WORDS = ("Twelve", "Fourteen", "Sixteen", "Eighteen", "Twenty", "Twenty-four")


def demo_records(today: date | None = None) -> list[StandinRecord]:
    """The demo set (70 records); `today` fixes which ones fall in the last 30 days."""
    today = today or date.today()
    rng = random.Random(DEMO_SEED)
    dates = _entrez_dates(rng, today)
    return [
        _demo_one(i, plan, dates[i], rng, today=today, recent=i >= len(PLAN) - N_RECENT)
        for i, plan in enumerate(PLAN)
    ]


def _entrez_dates(rng: random.Random, today: date) -> list[date]:
    """Sorted dates 2006-01-01 .. today-40 days, then the recent ones within the last 30 days."""
    old_end = today - timedelta(days=40)
    span = (old_end - date(2006, 1, 1)).days
    old = sorted(
        date(2006, 1, 1) + timedelta(days=rng.randint(0, span)) for _ in range(len(PLAN) - N_RECENT)
    )
    recent = sorted(today - timedelta(days=rng.randint(0, 29)) for _ in range(N_RECENT))
    return old + recent


def _demo_one(
    i: int,
    plan: tuple[str, str, str, str, str, str, bool],
    entrez: date,
    rng: random.Random,
    *,
    today: date,
    recent: bool,
) -> StandinRecord:
    design, cond_key, drug, route, comparator, outcome, therapy = plan
    cond = CONDITIONS[cond_key]
    pmid = str(DEMO_START_PMID + i)
    n = _sample_size(design, rng)
    pub = entrez + timedelta(days=rng.randint(-20, 40))
    revised = min(entrez + timedelta(days=rng.randint(30, 300)), today) if not recent else entrez
    journal, iso = JOURNALS[3] if not cond.in_scope else JOURNALS[rng.randrange(3)]
    fields = {
        "pmid": pmid,
        "doi": f"10.5555/kea.demo.{i + 1:03d}",
        "pmcid": f"PMC99{i + 1:05d}" if rng.random() < 0.3 else None,
        "title": "[Demo] " + _title(design, cond, drug, route, comparator, outcome, therapy),
        "abstract": _abstract(design, cond, drug, route, comparator, outcome, therapy, n, rng),
        "journal": journal,
        "journal_iso": iso,
        "year": pub.year,
        "month": pub.month,
        "day": pub.day,
        "volume": str(pub.year - 1990),
        "issue": str(rng.randint(1, 12)),
        "pages": None if recent else f"{(p := rng.randint(10, 900))}-{p + rng.randint(4, 14)}",
        "authors": [f"{rng.choice(SURNAMES)} {_initials(rng)}" for _ in range(rng.randint(1, 7))],
        "publication_types": _publication_types(design, recent, rng),
        "mesh_terms": [] if recent else _mesh(design, cond, drug),
        "keywords": [drug, cond.name] + (["psychotherapy"] if therapy else []),
        "entrez_date": entrez.isoformat(),
        "revised_date": revised.isoformat(),
        "language": "eng",
        "retracted": i == RETRACTED_INDEX,
    }
    if recent:
        fields["status"] = "In-Process" if i % 2 else "Publisher"
    return StandinRecord(pmid, entrez, revised, pub, fields)


def _initials(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTW"
    return "".join(rng.choice(letters) for _ in range(rng.randint(1, 2)))


def _sample_size(design: str, rng: random.Random) -> int:
    low, high = {
        "rct": (24, 260),
        "open_label": (10, 60),
        "cohort": (80, 2400),
        "systematic_review": (300, 4200),
        "case_report": (1, 3),
    }.get(design, (0, 0))
    return rng.randint(low, high) if high else 0


def _title(
    design: str,
    cond: Condition,
    drug: str,
    route: str,
    comparator: str,
    outcome: str,
    therapy: bool,
) -> str:
    route_adj = ROUTES[route][0]
    drug_cap = drug.capitalize()
    plus = " combined with psychotherapy" if therapy else ""
    comp = COMPARATORS[comparator]
    if design == "rct":
        vs = f" versus {comp}" if comp else ""
        return f"{route_adj.capitalize()} {drug}{plus}{vs} for {cond.name}: a randomized trial"
    if design == "systematic_review":
        return f"{drug_cap} for {cond.name}: a systematic review and meta-analysis"
    if design == "open_label":
        return f"Open-label {route_adj} {drug}{plus} in {cond.population}"
    if design == "cohort":
        return f"Real-world outcomes of {route_adj} {drug} in {cond.name}: a cohort study"
    if design == "case_report":
        return f"Repeated {route_adj} {drug}{plus} for {cond.name}: a case report"
    if design == "narrative_review":
        return f"{drug_cap} in {cond.name}: where do we stand? A narrative review"
    if design == "animal":
        return f"Effects of {drug} on stress-induced behaviour in a mouse model of {cond.name}"
    return f"{drug_cap}{plus} for {cond.name}: protocol for a randomized controlled trial"


def _abstract(
    design: str,
    cond: Condition,
    drug: str,
    route: str,
    comparator: str,
    outcome: str,
    therapy: bool,
    n: int,
    rng: random.Random,
) -> str:
    route_adj, form = ROUTES[route]
    comp = COMPARATORS[comparator]
    plus = " alongside eight sessions of structured psychotherapy" if therapy else ""
    if design == "animal":
        cond = replace(cond, scale=ANIMAL_SCALES.get(cond.key, "forced swim test immobility"))
    if design == "narrative_review":
        return (
            f"This narrative review summarises what is known about {drug} in {cond.name}, "
            f"including dosing, {route_adj} administration, safety and open questions. "
            "We discuss proposed mechanisms and practical considerations for clinicians."
            f"\n{DISCLAIMER}"
        )
    if design == "case_report":
        who = "a patient" if n == 1 else f"{n} patients"
        return (
            f"We describe {who} with {cond.name} treated with repeated {route_adj} {drug} "
            f"{form}{plus}. {CASE_RESULTS.get(outcome, '')} Dissociative effects were "
            f"transient.\n{DISCLAIMER}"
        )
    methods, conclusion = _methods_conclusion(
        design, cond, drug, route_adj, form, comp, plus, n, outcome, rng
    )
    background = (
        f"{drug.capitalize()} has been proposed as a rapid-acting treatment for "
        f"{cond.name}, but the evidence is still limited."
        if cond.in_scope
        else f"{drug.capitalize()} is widely used in anaesthesia and emergency care; its "
        f"place in {cond.name} is debated."
    )
    return "\n".join(
        (
            f"BACKGROUND: {background}",
            f"METHODS: {methods}",
            f"RESULTS: {_result_sentence(outcome, drug, cond, comp, rng)}",
            f"CONCLUSIONS: {conclusion}",
            DISCLAIMER,
        )
    )


def _methods_conclusion(
    design: str,
    cond: Condition,
    drug: str,
    route_adj: str,
    form: str,
    comp: str | None,
    plus: str,
    n: int,
    outcome: str,
    rng: random.Random,
) -> tuple[str, str]:
    dose = (
        f"{rng.choice((0.5, 0.5, 0.75, 1.0))} mg/kg"
        if route_adj != "intranasal"
        else f"{rng.choice((28, 56, 84))} mg"
    )
    verdict = {
        "beneficial": f"{drug.capitalize()} appears effective for {cond.name}.",
        "no_benefit": f"{drug.capitalize()} did not improve {cond.name} outcomes.",
        "mixed": f"Effects of {drug} on {cond.name} were inconsistent.",
        "not_reported": "Results will be reported after the trial ends.",
    }[outcome]
    if design == "rct":
        return (
            f"A total of {n} {cond.population} were randomized to {route_adj} {drug} "
            f"({dose}){plus} or {comp}. The primary outcome was {cond.scale} at "
            f"{rng.choice(('24 hours', 'day 7', 'week 4'))}."
        ), verdict
    if design == "systematic_review":
        k = NUMBER_WORDS[rng.randrange(len(NUMBER_WORDS))]
        return (
            f"We searched five databases for randomized trials of {drug} in {cond.name}. "
            f"{k} trials (n = {n} participants) were pooled with random-effects "
            f"meta-analysis."
        ), verdict
    if design == "open_label":
        return (
            f"In this open-label study, {n} {cond.population} received six {route_adj} "
            f"{drug} {form} ({dose}){plus} over three weeks."
        ), verdict
    if design == "cohort":
        return (
            f"This retrospective cohort study reviewed the charts of {n} {cond.population} "
            f"treated with {route_adj} {drug} at three clinics."
        ), verdict
    if design == "animal":
        return (
            f"Male C57BL/6 mice exposed to chronic social defeat stress received a single "
            f"{drug} dose ({dose}) or saline; behaviour was tested at 1 and 7 days."
        ), verdict
    return (
        f"This protocol describes a randomized controlled trial that will enrol "
        f"{rng.randint(60, 400)} {cond.population}, comparing {route_adj} {drug}{plus} "
        f"with {comp or 'usual care'}. The primary outcome is {cond.scale}."
    ), verdict


def _result_sentence(
    outcome: str, drug: str, cond: Condition, comp: str | None, rng: random.Random
) -> str:
    diff, p_sig, p_ns = rng.uniform(2.0, 9.0), rng.uniform(0.001, 0.04), rng.uniform(0.2, 0.9)
    drug_cap = drug.capitalize()
    versus = f"compared with {comp}" if comp else "from baseline"
    if outcome == "beneficial":
        return (
            f"{drug_cap} improved {cond.scale} {versus} "
            f"(difference {diff:.1f} points; p = {p_sig:.3f})."
        )
    if outcome == "no_benefit":
        return (
            f"{cond.scale[0].upper()}{cond.scale[1:]} did not change significantly with "
            f"{drug} {versus} (p = {p_ns:.2f})."
        )
    if outcome == "mixed":
        return (
            f"{drug_cap} improved {cond.scale} {versus} at 24 hours (p = {p_sig:.3f}) "
            f"but not at day 14 (p = {p_ns:.2f})."
        )
    return "No efficacy results are reported."


def _publication_types(design: str, recent: bool, rng: random.Random) -> list[str]:
    types = list(PUBLICATION_TYPES[design])
    if recent and rng.random() < 0.5:
        return ["Journal Article"]
    return types


def _mesh(design: str, cond: Condition, drug: str) -> list[str]:
    drug_mesh = "Esketamine" if drug == "esketamine" else "Ketamine"
    terms = [f"{drug_mesh}* / therapeutic use", *cond.mesh]
    terms += ["Animals", "Mice"] if design == "animal" else ["Humans"]
    if design == "rct":
        terms.append("Double-Blind Method")
    return terms
