"""Unit tests of the rendering rules (R3) and the message builder (R4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifications.delivery import Content, build_message, html_to_text
from notifications.rendering import Renderer, RenderError, build_context, money, one_line, other_spellings

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def context(**data):
    return build_context(
        data,
        now=NOW,
        company_name="Shop",
        support_email="help@example.com",
        recipient_name="R",
        recipient_email="r@example.com",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (59.9, "59.90"),
        ("59.9", "59.90"),
        (2.675, "2.68"),
        (0.005, "0.01"),
        (-1.005, "-1.01"),
        (10, "10.00"),
        ("1e3", "1000.00"),
        (" 7 ", "7.00"),
        ("", ""),
        (None, ""),
        ("abc", "abc"),
        ("NaN", "NaN"),
        ("12abc", "12abc"),
    ],
)
def test_money(value, expected):
    assert money(value) == expected


def test_money_of_undefined_renders_empty():
    assert Renderer().render({"subject": "[{{ nothing|money }}]"}, context()).subject == "[]"


def test_finalize_rules():
    rendered = Renderer().render(
        {
            "subject": "s",
            "body_text": "{{ t }}|{{ f }}|{{ n }}|{{ l }}|{{ d }}|{{ x.y.z }}|{{ i }}",
            "body_html": "{{ l }}",
        },
        context(t=True, f=False, n=None, l=[1, "<a>"], d={"k": "v"}, i=3),
    )
    assert rendered.body_text == 'true|false||[1,"<a>"]|{"k":"v"}||3'
    assert rendered.body_html == "[1,&#34;&lt;a&gt;&#34;]"  # escaping applies after finalize
    assert rendered.missing_variables == ["x"]


def test_both_brace_spellings_and_builtins():
    rendered = Renderer().render(
        {
            "subject": "{{a}} {{ a }} {{ current_date }} {{ current_datetime }}",
            "body_text": "{{ recipient_name }} {{ recipient_email }} {{ support_email }}",
        },
        context(a="x"),
    )
    assert rendered.subject == "x x 2026-03-04 2026-03-04 05:06:07"
    assert rendered.body_text == "R r@example.com help@example.com"


def test_alias_spellings_and_data_wins():
    assert other_spellings("customerName") == {"customer_name"}
    assert other_spellings("order_number") == {"orderNumber"}
    assert other_spellings("plain") == set()
    ctx = context(customerName="A", customer_name="B", orderNumber="O-1", company_name="Mine")
    assert ctx["customer_name"] == "B" and ctx["customerName"] == "A"
    assert ctx["order_number"] == "O-1" and ctx["company_name"] == "Mine"


def test_subject_is_one_line():
    assert one_line(" a\r\nb\nc\rd\u2028e\x0bf\tg  h ") == "a b c d e f g h"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ x.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__ }}",
        "{{ 'a' * 2000000 }}",
        "{{ 2 ** 100000 }}",
        "{% for i in range(1000000) %}{% endfor %}",
    ],
)
def test_sandbox_refuses(source):
    with pytest.raises(RenderError):
        Renderer().render({"subject": "s", "body_text": source}, context(x="y"))


def test_derived_variables_leave_out_builtins_and_loop_names():
    names = Renderer().derived_variables(
        {
            "subject": "{{ company_name }} {{ b }}",
            "body_html": "{% for item in items %}{{ item.name }}{{ loop.index }}{% endfor %}{{ range(3)|list }}",
            "body_text": "{{ a }}{{ current_year }}",
        }
    )
    assert names == ["a", "b", "items"]


def test_html_to_text():
    assert html_to_text("<style>p{}</style><h1>T&amp;C</h1><p>One<br>Two</p><ul><li>A</li><li>B</li></ul>") == (
        "T&C\nOne\nTwo\nA\nB\n"
    )


def test_message_headers_are_set_through_the_api():
    content = Content(
        message_id="<id@example.com>",
        recipient_email="john@example.com",
        recipient_name="Jöhn, Jr.",
        subject="Grüße",
        body_html=None,
        body_text="Hi",
    )
    msg = build_message(content, from_name='Shop "Best"', from_email="shop@example.com", now=NOW)
    assert msg.get_content_type() == "text/plain"
    assert msg["To"].addresses[0].display_name == "Jöhn, Jr."
    assert msg["From"].addresses[0].display_name == 'Shop "Best"'
    assert msg["Date"] == "Wed, 04 Mar 2026 05:06:07 +0000"
    assert msg["Message-ID"] == "<id@example.com>"
    assert b"=?utf-8?" in msg.as_bytes()  # non-ASCII names and subject as encoded words
