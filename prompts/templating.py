"""The prompt template language: Django templates on a dedicated engine, without HTML escaping.

Prompts are plain text for a language model, so escaping would corrupt them (``&`` → ``&amp;``). Because
``string_if_invalid`` stays empty, a misspelt variable would silently render as nothing; instead every variable a
template reads is extracted from the parsed node tree and checked against the variables the prompt declares.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import FilterExpression, Node, NodeList, TokenType, Variable
from django.template.defaulttags import ForNode, IfNode, WithNode

from prompts.errors import ForbiddenTagError, PromptRenderError, PromptSyntaxError, UndeclaredVariableError

# Tags that reach outside the prompt (other templates, URLs, the debug dump of the whole context).
FORBIDDEN_TAGS = frozenset({"include", "extends", "block", "load", "debug", "url", "csrf_token"})
# Names a tag puts into the context for the following siblings ({% cycle … as x %}, {% regroup … as x %}, …).
_AS_NAME_ATTRIBUTES = ("asvar", "variable_name", "var_name")
# A line holding only block tags or comments disappears entirely (like Jinja's trim_blocks + lstrip_blocks), so
# loops and conditions can sit on their own lines without leaving blank lines in the prompt.
_TAG_ONLY_LINE = re.compile(r"^[ \t]*(?:(?:\{%[^\n]*?%\}|\{#[^\n]*?#\})[ \t]*)+\n", re.MULTILINE)


@functools.cache
def engine() -> Engine:
    # debug=True keeps the source position of every token, so errors can name the line.
    return Engine(autoescape=False, debug=True, dirs=[], app_dirs=False, libraries={}, builtins=["prompts.filters"])


@dataclass(frozen=True)
class CompiledPrompt:
    name: str
    template: Template
    variables: frozenset[str]

    def render(self, context: dict[str, Any], *, sample: str | None = None) -> str:
        try:
            rendered = self.template.render(Context(context, autoescape=False))
        except Exception as exc:  # a filter or a value's __str__ can raise anything; the caller needs the name
            raise PromptRenderError(self.name, f"{type(exc).__name__}: {exc}", sample) from exc
        # Template.render returns a SafeString; the result is unescaped text that may hold document content, so it
        # must never be trusted as HTML by a page that shows it. join() returns a plain str.
        return "".join([rendered])


def compile_prompt(name: str, source: str, declared: Collection[str]) -> CompiledPrompt:
    """Parse, check tags and variables against ``declared``, and return the template ready to render."""
    original = _parse(name, source)
    _refuse_forbidden_tags(name, original.nodelist)
    used = used_variables(original.nodelist)
    undeclared = used - set(declared)
    if undeclared:
        raise UndeclaredVariableError(name, undeclared, declared)
    # The original parse gives true line numbers for errors; the trimmed one is what renders.
    return CompiledPrompt(name=name, template=_parse(name, trim_tag_lines(source)), variables=frozenset(used))


def trim_tag_lines(source: str) -> str:
    return _TAG_ONLY_LINE.sub(lambda match: match.group(0).strip(), source)


def _parse(name: str, source: str) -> Template:
    try:
        return engine().from_string(source)
    except TemplateSyntaxError as exc:
        debug = getattr(exc, "template_debug", None) or {}
        raise PromptSyntaxError(name, str(exc), debug.get("line")) from exc


def _line(node: Node) -> int | None:
    token = getattr(node, "token", None)
    return getattr(token, "lineno", None)


def _walk_nodes(nodelist: Iterable[Node]) -> Iterator[Node]:
    for node in nodelist:
        yield node
        for child in _child_nodelists(node):
            yield from _walk_nodes(child)


def _child_nodelists(node: Node) -> Iterator[NodeList]:
    for attr in node.child_nodelists:
        child = getattr(node, attr, None)
        if child:
            yield child


def _refuse_forbidden_tags(name: str, nodelist: NodeList) -> None:
    for node in _walk_nodes(nodelist):
        token = getattr(node, "token", None)
        if token is None or token.token_type != TokenType.BLOCK:
            continue
        tag = token.split_contents()[0]
        if tag in FORBIDDEN_TAGS:
            raise ForbiddenTagError(name, tag, _line(node))


def used_variables(nodelist: Iterable[Node], scope: frozenset[str] = frozenset()) -> set[str]:
    """Top-level context names the template reads, minus names bound inside it (loop variables, ``with``)."""
    found: set[str] = set()
    for node in nodelist:
        if isinstance(node, ForNode):
            found |= _expression_names(node.sequence, scope)
            found |= used_variables(node.nodelist_loop, scope | set(node.loopvars) | {"forloop"})
            found |= used_variables(node.nodelist_empty, scope)
        elif isinstance(node, WithNode):
            for expression in node.extra_context.values():
                found |= _expression_names(expression, scope)
            found |= used_variables(node.nodelist, scope | set(node.extra_context))
        else:
            for expression in _node_expressions(node):
                found |= _expression_names(expression, scope)
            for child in _child_nodelists(node):
                found |= used_variables(child, scope)
            scope = scope | _names_bound_for_siblings(node)
    return found


def _names_bound_for_siblings(node: Node) -> set[str]:
    return {value for attr in _AS_NAME_ATTRIBUTES if isinstance(value := getattr(node, attr, None), str)}


def _node_expressions(node: Node) -> Iterator[FilterExpression]:
    if isinstance(node, IfNode):
        for condition, _nodelist in node.conditions_nodelists:
            yield from _condition_expressions(condition)
        return
    # Other tags keep their arguments as FilterExpressions in attributes, alone or in lists/dicts.
    for value in vars(node).values():
        if isinstance(value, FilterExpression):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (item for item in value if isinstance(item, FilterExpression))
        elif isinstance(value, dict):
            yield from (item for item in value.values() if isinstance(item, FilterExpression))


def _condition_expressions(condition: Any) -> Iterator[FilterExpression]:
    # {% if %} conditions are a small operator tree whose leaves (TemplateLiteral) hold a FilterExpression.
    if condition is None:
        return
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        yield value
        return
    yield from _condition_expressions(getattr(condition, "first", None))
    yield from _condition_expressions(getattr(condition, "second", None))


def _expression_names(expression: FilterExpression, scope: frozenset[str]) -> set[str]:
    variables = [expression.var]
    for _filter, arguments in expression.filters:
        variables.extend(argument for is_lookup, argument in arguments if is_lookup)
    return {
        variable.lookups[0]
        for variable in variables
        if isinstance(variable, Variable) and variable.lookups and variable.lookups[0] not in scope
    }
