"""Variable checking and the restricted template language, without the database."""

from __future__ import annotations

import pytest
from django.utils.safestring import SafeData

from prompts.errors import ForbiddenTagError, PromptRenderError, PromptSyntaxError, UndeclaredVariableError
from prompts.templating import compile_prompt, trim_tag_lines

DECLARED = {"passages", "memory", "language"}


def used(source: str) -> set[str]:
    return set(compile_prompt("demo", source, declared={"a", "b", "c", "items", "x", "y"}).variables)


def test_variables_are_found_in_output_filters_conditions_and_loops():
    source = (
        "{{ a.title|default:b }}"
        "{% if c and not x %}{% for item in items %}{{ item.text }}{{ forloop.counter }}{% endfor %}{% endif %}"
        "{% with total=y|length %}{{ total }}{% endwith %}"
    )
    assert used(source) == {"a", "b", "c", "x", "items", "y"}


def test_loop_variables_are_not_context_variables_inside_the_loop_only():
    with pytest.raises(UndeclaredVariableError) as caught:
        compile_prompt("demo", "{% for p in passages %}{{ p.text }}{% endfor %}{{ p.text }}", DECLARED)
    assert caught.value.names == ["p"]


def test_undeclared_variable_error_names_the_prompt_the_variable_and_the_declared_ones():
    with pytest.raises(UndeclaredVariableError) as caught:
        compile_prompt("answer_system", "{% if language == 'ko' %}{{ usr_question }}{% endif %}", DECLARED)
    message = str(caught.value)
    assert "'answer_system'" in message
    assert "usr_question" in message
    assert "language, memory, passages" in message


def test_undeclared_variable_inside_an_elif_branch_condition_is_found():
    with pytest.raises(UndeclaredVariableError, match="secret"):
        compile_prompt("demo", "{% if memory %}a{% elif secret == 1 %}b{% else %}c{% endif %}", DECLARED)


def test_syntax_error_reports_the_line():
    with pytest.raises(PromptSyntaxError) as caught:
        compile_prompt("demo", "line one\nline two\n{% for p in passages %}\n{{ p }}\n", DECLARED)
    assert caught.value.line == 3
    assert "on line 3" in str(caught.value)


def test_unknown_filter_is_a_syntax_error():
    with pytest.raises(PromptSyntaxError, match="shout"):
        compile_prompt("demo", "{{ memory|shout }}", DECLARED)


@pytest.mark.parametrize("source", ['{% include "x.html" %}', "{% load i18n %}", "{% debug %}"])
def test_tags_that_reach_outside_the_prompt_are_refused(source):
    with pytest.raises((ForbiddenTagError, PromptSyntaxError)):
        compile_prompt("demo", source, DECLARED)


def test_include_is_refused_by_name():
    with pytest.raises(ForbiddenTagError, match=r"\{% include %\}"):
        compile_prompt("demo", 'a\n{% include "x.html" %}', DECLARED)


def test_rendering_does_not_html_escape():
    compiled = compile_prompt("demo", "{{ memory }}", DECLARED)
    assert compiled.render({"memory": "<b>R&D</b> \"quoted\" 'single'"}) == "<b>R&D</b> \"quoted\" 'single'"


def test_rendered_text_is_not_marked_html_safe():
    # Unescaped document text must be escaped by any page that shows it, so it must not arrive as SafeString.
    rendered = compile_prompt("demo", "{{ memory }}", DECLARED).render({"memory": "<script>x</script>"})
    assert type(rendered) is str
    assert not isinstance(rendered, SafeData)


class Unprintable:
    def __str__(self) -> str:
        raise ValueError("cannot print me")


def test_a_value_failing_at_render_time_is_a_prompt_render_error_naming_the_prompt():
    compiled = compile_prompt("demo", "{{ memory }}", DECLARED)
    with pytest.raises(PromptRenderError, match=r"'demo'.*cannot print me"):
        compiled.render({"memory": Unprintable()})


def test_lines_holding_only_tags_leave_no_blank_lines():
    source = "a\n{% for x in items %}\n- {{ x }}\n{% endfor %}\nb\n"
    compiled = compile_prompt("demo", source, {"items"})
    assert compiled.render({"items": ["1", "2"]}) == "a\n- 1\n- 2\nb\n"
    assert trim_tag_lines("  {% if a %}  \ntext {% if b %}x{% endif %}\n") == "{% if a %}text {% if b %}x{% endif %}\n"
