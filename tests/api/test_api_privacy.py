"""Masking linked persons' citizen IDs (api/privacy.py), without a database."""
from __future__ import annotations

import networkx as nx

from api.privacy import mask, mask_graph, mask_text
from engine.codes import citizen_id_check_char, mask_citizen_id

from conftest import org_code, person_code


def citizen(birth: str, sequence: str) -> str:
    body = f"511702{birth}{sequence}"
    return body + citizen_id_check_char(body)


def test_only_valid_citizen_ids_other_than_the_asked_one_are_masked():
    asked, other, company = person_code(1), person_code(2), org_code(1)
    text = f"{asked} {other} subject:{other} {company} 123456789012345678"
    assert mask_text(text, keep=asked) == (f"{asked} {mask_citizen_id(other)} subject:{mask_citizen_id(other)} "
                                           f"{company} 123456789012345678")


def test_mask_reaches_keys_and_nested_values():
    other = person_code(3)
    value = {"related": [{"code": other}], other: ("a", other), "n": 5, "none": None}
    assert mask(value, keep=org_code(2)) == {"related": [{"code": mask_citizen_id(other)}],
                                              mask_citizen_id(other): ["a", mask_citizen_id(other)], "n": 5,
                                              "none": None}


def test_two_persons_with_the_same_masked_id_stay_two_nodes():
    first = citizen("19800101", "123")
    second = next(c for day in range(1, 29) if (c := citizen(f"199002{day:02d}", "123"))[-1] == first[-1])
    assert first != second and mask_citizen_id(first) == mask_citizen_id(second)
    company = org_code(4)
    graph = nx.DiGraph(subject=company)
    for person in (first, second):
        graph.add_node(f"subject:{person}", label=f"某人\n{person}")
        graph.add_edge(f"subject:{company}", f"subject:{person}", relation="legal_representative")
    masked = mask_graph(graph, keep=company)
    assert masked.number_of_nodes() == 3 and masked.number_of_edges() == 2
    assert first not in str(list(masked.nodes(data=True))) and second not in str(list(masked.nodes(data=True)))
    assert graph.has_node(f"subject:{first}")  # the original is left alone
