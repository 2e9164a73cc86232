"""The default PubMed search strategy (documented in the README, "The query").

Sensitive on purpose: MeSH for indexed records plus [tiab] words for the newest
ones that NLM has not indexed yet. No design filter: the classifier decides design.
"""

DRUG = (
    'ketamine[mh] OR ketamin*[tiab] OR esketamine[tiab] OR "s-ketamine"[tiab] '
    'OR "(s)-ketamine"[tiab] OR arketamine[tiab] OR "r-ketamine"[tiab] OR "(r)-ketamine"[tiab] '
    "OR spravato[tiab] OR ketalar[tiab] OR ketanest[tiab]"
)

CONDITIONS = (
    # depression, incl. bipolar depression and suicidality
    "mood disorders[mh] OR depression[mh] OR depress*[tiab] OR antidepress*[tiab] "
    "OR dysthymi*[tiab] OR bipolar[tiab] OR melanchol*[tiab] "
    "OR suicidal ideation[mh] OR suicide[mh] OR suicid*[tiab] "
    # PTSD and trauma-related disorders
    "OR stress disorders, post-traumatic[mh] OR stress disorders, traumatic, acute[mh] "
    'OR ptsd[tiab] OR posttraumatic[tiab] OR "post-traumatic"[tiab] OR "acute stress disorder"[tiab] '
    # anxiety disorders, incl. OCD and panic
    "OR anxiety disorders[mh] OR anxiety[mh] OR anxi*[tiab] OR anxiolytic*[tiab] "
    "OR obsessive-compulsive disorder[mh] OR obsessive*[tiab] OR ocd[tiab] OR panic[tiab] "
    "OR phobi*[tiab]"
)

DEFAULT_QUERY = f"({DRUG}) AND ({CONDITIONS})"
