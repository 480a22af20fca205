"""Words on the workbench, Dutch first and English available: the codes of the contracts
(risk levels, needs, sources, queue reasons, closing reasons, referral statuses) and
screening's reasons, which screening writes in English and which the consultants read out in
Dutch. Pure: no I/O.

Screening's reasons are sentences from a small, fixed set of templates
(``services/screening/domain.py``); each template has a pattern here. A reason no pattern
knows is shown as written, marked as English, rather than guessed at."""

from __future__ import annotations

import re
from collections.abc import Callable

LANGUAGES = ("nl", "en")

_WORDS: dict[str, dict[str, str]] = {
    # risk levels
    "in_balance": {"nl": "in balans", "en": "in balance"},
    "at_risk": {"nl": "risico op overbelasting", "en": "at risk"},
    "overburdened": {"nl": "overbelast", "en": "overburdened"},
    "crisis": {"nl": "crisis", "en": "crisis"},
    # needs
    "information_advice": {"nl": "informatie en advies", "en": "information and advice"},
    "emotional_support": {"nl": "emotionele steun", "en": "emotional support"},
    "practical_help": {"nl": "praktische hulp", "en": "practical help"},
    "respite_care": {"nl": "respijtzorg (even vrij)", "en": "respite care"},
    "peer_contact": {"nl": "lotgenotencontact", "en": "peer contact"},
    "financial_administrative": {"nl": "hulp bij geld en administratie", "en": "financial and administrative help"},
    "work_care_balance": {"nl": "werk en zorg combineren", "en": "combining work and care"},
    "young_carer_support": {"nl": "steun voor jonge mantelzorgers", "en": "young carer support"},
    "case_management": {"nl": "casemanagement", "en": "case management"},
    # sources
    "gp": {"nl": "huisarts", "en": "GP"},
    "practice_nurse": {"nl": "praktijkondersteuner", "en": "practice nurse"},
    "welfare_worker": {"nl": "welzijnswerker", "en": "welfare worker"},
    "neighbourhood_team": {"nl": "wijkteam", "en": "neighbourhood team"},
    "home_care": {"nl": "thuiszorg", "en": "home care"},
    "resident": {"nl": "buurtbewoner", "en": "resident"},
    "self": {"nl": "de mantelzorger zelf", "en": "the caregiver"},
    "other": {"nl": "anders", "en": "other"},
    # referral statuses
    "requested": {"nl": "aangevraagd", "en": "requested"},
    "accepted": {"nl": "geaccepteerd", "en": "accepted"},
    "rejected": {"nl": "afgewezen", "en": "declined"},
    "in-progress": {"nl": "loopt", "en": "in progress"},
    "on-hold": {"nl": "gepauzeerd", "en": "on hold"},
    "completed": {"nl": "afgerond", "en": "completed"},
    "failed": {"nl": "mislukt", "en": "failed"},
    "cancelled": {"nl": "geannuleerd", "en": "cancelled"},
    # contact preferences
    "email": {"nl": "e-mail", "en": "e-mail"},
    "phone": {"nl": "telefoon", "en": "phone"},
    "sms": {"nl": "sms", "en": "SMS"},
    "post": {"nl": "post", "en": "post"},
    "do_not_contact": {"nl": "geen contact", "en": "do not contact"},
    # the case history
    "signal": {"nl": "signaal", "en": "signal"},
    "contact": {"nl": "contactpoging", "en": "contact attempt"},
    "note": {"nl": "notitie", "en": "note"},
    "answers": {"nl": "antwoorden vastgelegd", "en": "answers recorded"},
    "handoff": {"nl": "overgedragen aan het Wmo-loket", "en": "handed off to the Wmo desk"},
    "closed": {"nl": "afgesloten", "en": "closed"},
    "referral": {"nl": "aanmelding", "en": "referral"},
    "follow_up": {"nl": "nazorgvraag beantwoord", "en": "follow-up answered"},
    "rescreen_due": {"nl": "herhaalmeting nodig", "en": "re-screen due"},
    "call": {"nl": "gebeld", "en": "call"},
    "visit": {"nl": "langsgegaan", "en": "visit"},
    "letter": {"nl": "brief", "en": "letter"},
    "reached": {"nl": "bereikt", "en": "reached"},
    "not_reached": {"nl": "niet bereikt", "en": "not reached"},
    "appointment": {"nl": "afspraak gemaakt", "en": "appointment made"},
    "True": {"nl": "ja", "en": "yes"},
    "False": {"nl": "nee", "en": "no"},
}

QUEUE_REASONS: dict[str, dict[str, str]] = {
    "crisis": {"nl": "Crisis: binnen {hours} uur oppakken", "en": "Crisis: pick up within {hours} hours"},
    "crisis_overdue": {
        "nl": "Crisis: termijn verstreken, doorgezet naar de achterwacht",
        "en": "Crisis: deadline passed, escalated to the back-up",
    },
    "veilig_thuis": {
        "nl": "Vermoeden van ontspoorde zorg: meldcode, advies bij Veilig Thuis (0800-2000)",
        "en": "Suspected derailed care: reporting code, advice from Veilig Thuis (0800-2000)",
    },
    "escalated": {"nl": "Geëscaleerd naar de mantelzorgconsulent", "en": "Escalated to the caregiver consultant"},
    "unmatched": {"nl": "Geen passend aanbod gevonden", "en": "No matching support found"},
    "no_consent": {
        "nl": "Geen toestemming voor contact: zelf benaderen (bellen of langsgaan)",
        "en": "No consent to contact: reach out (call or visit)",
    },
    "no_channel": {"nl": "Geen bruikbaar contactkanaal: bellen of langsgaan", "en": "No usable channel: call or visit"},
    "prefers_phone": {"nl": "Wil liever gebeld worden", "en": "Prefers a phone call"},
    "prefers_post": {"nl": "Wil liever post", "en": "Prefers post"},
    "rescreen_due": {"nl": "Herhaalmeting nodig", "en": "Re-screen due"},
    "support_not_arrived": {"nl": "Nazorg: steun is niet aangekomen", "en": "Follow-up: support did not arrive"},
    "referral_unanswered": {"nl": "Aanmelding zonder antwoord van de aanbieder", "en": "Referral no provider answered"},
}

CLOSE_REASONS: dict[str, dict[str, str]] = {
    "support_in_place": {"nl": "Steun is geregeld", "en": "Support in place"},
    "declined": {"nl": "Mantelzorger wil geen steun", "en": "Caregiver declined"},
    "moved": {"nl": "Verhuisd", "en": "Moved"},
    "deceased": {"nl": "Naaste overleden", "en": "Person cared for died"},
    "care_ended": {"nl": "Zorg beëindigd", "en": "Care ended"},
    "palliative_phase": {"nl": "Palliatieve fase", "en": "Palliative phase"},
}

# What follows each closing reason, shown before the consultant confirms.
CLOSE_FOLLOWS: dict[str, dict[str, str]] = {
    "support_in_place": {
        "nl": "Herhaalmetingen gaan door volgens schema; de verwijzer hoort dat de zaak is afgesloten.",
        "en": "Re-screens continue on schedule; the referrer hears the case was closed.",
    },
    "declined": {
        "nl": "Geen herhaalmetingen meer; de verwijzer hoort dat de zaak is afgesloten.",
        "en": "No further re-screens; the referrer hears the case was closed.",
    },
    "moved": {
        "nl": "Geen herhaalmetingen meer hier; een nieuw signaal in de nieuwe gemeente start opnieuw.",
        "en": "No further re-screens here; a new signal in the new municipality starts afresh.",
    },
    "deceased": {
        "nl": "Geen herhaalmetingen meer; de mantelzorger krijgt (met toestemming) een kort bericht met "
        "deelneming en waar rouwondersteuning te vinden is.",
        "en": "No further re-screens; the caregiver gets (with consent) a short message of condolence "
        "and where to find bereavement support.",
    },
    "care_ended": {
        "nl": "Geen herhaalmetingen meer; de verwijzer hoort dat de zaak is afgesloten.",
        "en": "No further re-screens; the referrer hears the case was closed.",
    },
    "palliative_phase": {
        "nl": "Geen belastingsmetingen meer; blijf in contact en bied respijtzorg en palliatieve ondersteuning aan.",
        "en": "No further burden measurements; stay in touch and offer respite and palliative support.",
    },
}


def word(code: str | None, language: str) -> str:
    """The label of a code, or the code itself when it has none."""
    if code is None:
        return ""
    names = _WORDS.get(code) or CLOSE_REASONS.get(code) or {}
    return names.get(language) or code.replace("_", " ")


def _list(text: str) -> str:
    """Translate a comma-separated list of codes or English words (observations, fields)."""
    return ", ".join(_PHRASES.get(part.strip(), part.strip()) for part in text.split(","))


_PHRASES = {
    # observations (as screening writes them: with spaces or underscores)
    **{
        k: v
        for code, v in {
            "sleep_problems": "slaapproblemen",
            "physical_complaints": "lichamelijke klachten",
            "social_isolation": "sociaal isolement",
            "exhaustion": "uitputting",
            "emotional_distress": "emotionele nood",
            "tension": "spanning",
            "depressive_symptoms": "depressieve klachten",
            "financial_problems": "financiële problemen",
            "work_problems": "problemen op het werk",
            "relationship_strain": "relatieproblemen",
            "no_time_for_self": "geen tijd voor zichzelf",
            "no_backup": "geen vervanging",
            "care_recipient_behaviour": "gedrag van de naaste",
            "neglect": "verwaarlozing",
            "aggression": "agressie",
            "abuse": "mishandeling",
        }.items()
        for k in (code, code.replace("_", " "))
    },
    # unknown fields
    "hours per week": "uren per week",
    "duration of care": "duur van de zorg",
    "living together": "samenwonen",
    "paid work": "betaald werk",
    "caregiver's age": "leeftijd van de mantelzorger",
    "the recipient's condition": "aandoening van de naaste",
    # source kinds in prose
    **{code.replace("_", " "): v["nl"] for code, v in _WORDS.items()},
    # levels in prose
    "in balance": "in balans",
    "at risk": "risico op overbelasting",
    # band labels
    "none": "geen",
    "light": "licht",
    "moderate": "matig",
    "heavy": "zwaar",
    "low": "laag",
    "medium": "gemiddeld",
    "high": "hoog",
}

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _rule(pattern: str, dutch: Callable[[re.Match[str]], str]) -> _Rule:
    return re.compile(f"^{pattern}$"), dutch


def _fixed(dutch: str) -> Callable[[re.Match[str]], str]:
    return lambda _: dutch


def _p(text: str) -> str:
    return _PHRASES.get(text, text)


_RULES: list[_Rule] = [
    _rule(
        r"(.+) score (\d+) of (\d+): band (\w+) \((\d+)–(\d+)\), a high-burden band: overburdened",
        lambda m: f"{m[1]}-score {m[2]} van {m[3]}: {_p(m[4])} ({m[5]}–{m[6]}), een zware band: overbelast",
    ),
    _rule(
        r"(.+) score (\d+) of (\d+): band (\w+) \((\d+)–(\d+)\), burden below the cut-off: at risk",
        lambda m: (
            f"{m[1]}-score {m[2]} van {m[3]}: {_p(m[4])} ({m[5]}–{m[6]}), onder de afkapwaarde: risico op overbelasting"
        ),
    ),
    _rule(
        r"(.+) score (\d+) of (\d+): band (\w+) \((\d+)–(\d+)\)",
        lambda m: f"{m[1]}-score {m[2]} van {m[3]}: {_p(m[4])} ({m[5]}–{m[6]})",
    ),
    _rule(
        r"(.+) score (\d+) of (\d+): no validated cut-off; read provisionally as (.+) "
        r"\((\d+) or more at risk, (\d+) or more overburdened\)",
        lambda m: (
            f"{m[1]}-score {m[2]} van {m[3]}: geen gevalideerde afkapwaarde; voorlopig gelezen als "
            f"{_p(m[4])} ({m[5]} of meer risico, {m[6]} of meer overbelast)"
        ),
    ),
    _rule(
        r"cares ([\d.]+) hours per week \(more than (\d+)\)", lambda m: f"zorgt {m[1]} uur per week (meer dan {m[2]})"
    ),
    _rule(
        r"has cared for (\d+) months \(a year or longer\)", lambda m: f"zorgt al {m[1]} maanden (een jaar of langer)"
    ),
    _rule(r"lives with the person cared for", lambda m: "woont samen met de naaste"),
    _rule(r"combines care with paid work", lambda m: "combineert zorg met betaald werk"),
    _rule(
        r"the person cared for has (.+)",
        lambda m: f"de naaste heeft {m[1].replace(' and ', ' en ').replace('dementia', 'dementie')}",
    ),
    _rule(
        r"caregiver is about (\d+): a young carer \(under (\d+)\)",
        lambda m: f"mantelzorger is ongeveer {m[1]}: een jonge mantelzorger (onder {m[2]})",
    ),
    _rule(
        r"caregiver is about (\d+) \((\d+) or older\)", lambda m: f"mantelzorger is ongeveer {m[1]} ({m[2]} of ouder)"
    ),
    _rule(
        r"balance model: (\d+) points \(load (\d+), reduced capacity (\d+), signs of strain (\d+)\); (.+)",
        lambda m: (
            f"balansmodel: {m[1]} punten (draaglast {m[2]}, minder draagkracht {m[3]}, "
            f"tekenen van overbelasting {m[4]}); {_band(m[5])}"
        ),
    ),
    *(
        _rule(re.escape(en), _fixed(nl))
        for en, nl in {
            "the person cared for shows behaviour problems": "de naaste vertoont gedragsproblemen",
            "nobody to take over the care": "niemand om de zorg over te nemen",
            "financial problems": "financiële problemen",
            "socially isolated: a small network to lean on": "sociaal geïsoleerd: een klein netwerk om op te leunen",
            "observed exhaustion": "uitputting gezien",
            "observed emotional distress": "emotionele nood gezien",
            "observed depressive symptoms": "depressieve klachten gezien",
            "observed sleep problems": "slaapproblemen gezien",
            "observed physical complaints": "lichamelijke klachten gezien",
            "observed tension": "spanning gezien",
            "observed problems at work": "problemen op het werk gezien",
            "observed strain in the relationship": "spanning in de relatie gezien",
            "no time left for themselves": "geen tijd meer voor zichzelf",
        }.items()
    ),
    _rule(r"(.+) mean at least at risk", lambda m: f"{_list(m[1])}: minstens risico op overbelasting"),
    _rule(
        r"the referrer marked the signal as urgent: at least at risk",
        lambda m: "de verwijzer markeerde het signaal als urgent: minstens risico op overbelasting",
    ),
    _rule(r"not reported, so not weighed: (.+)", lambda m: f"niet gemeld, dus niet meegewogen: {_list(m[1])}"),
    _rule(r"the referrer reported a crisis", lambda m: "de verwijzer meldde een crisis"),
    _rule(
        r"signs of derailed care observed: (.+) \(Veilig Thuis can advise\)",
        lambda m: f"signalen van ontspoorde zorg: {_list(m[1])} (Veilig Thuis kan adviseren)",
    ),
    _rule(
        r"(.+) answers that added to the score: items (.+)", lambda m: f"{m[1]}-antwoorden die meetelden: items {m[2]}"
    ),
    _rule(
        r"the care situation weighs more than the (.+) score: (.+)",
        lambda m: f"de zorgsituatie weegt zwaarder dan de {m[1]}-score: {_p(m[2])}",
    ),
    _rule(
        r"next: administer (.+) to measure the burden",
        lambda m: f"volgende stap: neem de {m[1]} af om de belasting te meten",
    ),
    _rule(
        r"(\d+) signals? from (\d+) independent sources? \((.+)\)(, with a completed instrument)?: confidence (\w+)",
        lambda m: (
            f"{m[1]} {'signaal' if m[1] == '1' else 'signalen'} van {m[2]} onafhankelijke "
            f"{'bron' if m[2] == '1' else 'bronnen'} ({_list(m[3])})"
            f"{', met een ingevuld instrument' if m[4] else ''}: betrouwbaarheid {_p(m[5])}"
        ),
    ),
    _rule(
        r"highest level among the signals: (.+) \(from the (.+) signal of ([\d-]+)\)",
        lambda m: f"hoogste niveau van de signalen: {_p(m[1])} (uit het signaal van {_list(m[2])} van {m[3]})",
    ),
    _rule(
        r"independent sources \((.+)\) each judged the caregiver at risk: raised to overburdened",
        lambda m: f"onafhankelijke bronnen ({_list(m[1])}) zien elk een risico: verhoogd naar overbelast",
    ),
    _rule(
        r"crisis: escalate to a caregiver consultant now",
        lambda m: "crisis: nu doorzetten naar een mantelzorgconsulent",
    ),
    _rule(
        r"overburdening confirmed by independent sources: escalate to a caregiver consultant",
        lambda m: "overbelasting bevestigd door onafhankelijke bronnen: doorzetten naar een mantelzorgconsulent",
    ),
]


def _band(text: str) -> str:
    m = re.match(r"(?:below (\d+)|(\d+) to (\d+)|(\d+) or more) reads as (.+)", text)
    if not m:
        return text
    level = _p(m[5])
    if m[1]:
        return f"onder {m[1]} is {level}"
    if m[2]:
        return f"{m[2]} tot en met {m[3]} is {level}"
    return f"{m[4]} of meer is {level}"


def reason(text: str, language: str) -> tuple[str, bool]:
    """Screening's reason in ``language``; (text, translated). English passes through."""
    if language == "en":
        return text, True
    for pattern, dutch in _RULES:
        if m := pattern.match(text):
            return dutch(m), True
    return text, False
