# ruff: noqa: E501  (template sources are the contract's, verbatim)
"""The seven default templates, installed once per database by the first migration (contract section 5).

Sources are the contract's, verbatim; ``variables`` lists the names each one references minus the built-ins."""

from __future__ import annotations

from typing import Final

DEFAULT_TEMPLATES: Final[tuple[dict[str, object], ...]] = (
    {
        "code": "welcome_customer",
        "name": "Welcome Customer",
        "subject": "Welcome to {{ company_name }}, {{ customer_name }}!",
        "variables": ["customer_name", "login_url"],
        "body_html": """\
<h2>Welcome, {{ customer_name }}!</h2>
<p>Your {{ company_name }} account is ready to use.</p>
<p><a href="{{ login_url }}">Sign in to your account</a></p>
<p>Questions? Write to {{ support_email }}.</p>
<p>&copy; {{ current_year }} {{ company_name }}</p>
""",
        "body_text": """\
Welcome, {{ customer_name }}!
Your {{ company_name }} account is ready to use. Sign in: {{ login_url }}
Questions? Write to {{ support_email }}.
""",
    },
    {
        "code": "welcome_seller",
        "name": "Welcome Seller",
        "subject": "Welcome to {{ company_name }}, {{ seller_name }}!",
        "variables": ["seller_name", "business_name", "dashboard_url"],
        "body_html": """\
<h2>Welcome, {{ seller_name }}!</h2>
<p>{{ business_name }} is now registered as a seller on {{ company_name }}.</p>
{% if dashboard_url %}<p><a href="{{ dashboard_url }}">Open your seller dashboard</a></p>{% endif %}
<p>Questions? Write to {{ support_email }}.</p>
""",
        "body_text": """\
Welcome, {{ seller_name }}!
{{ business_name }} is now registered as a seller on {{ company_name }}.
{% if dashboard_url %}Seller dashboard: {{ dashboard_url }}{% endif %}
Questions? Write to {{ support_email }}.
""",
    },
    {
        "code": "email_verification",
        "name": "Email Verification",
        "subject": "Please verify your email address",
        "variables": ["customer_name", "verification_link", "expiry_time"],
        "body_html": """\
<p>Hello{% if customer_name %} {{ customer_name }}{% endif %},</p>
<p>Please confirm your email address for {{ company_name }}.</p>
<p><a href="{{ verification_link }}">Verify my email address</a></p>
{% if expiry_time %}<p>The link is valid for {{ expiry_time }}.</p>{% endif %}
<p>If you did not sign up, you can ignore this email.</p>
""",
        "body_text": """\
Hello{% if customer_name %} {{ customer_name }}{% endif %},
Please confirm your email address for {{ company_name }}: {{ verification_link }}
{% if expiry_time %}The link is valid for {{ expiry_time }}.{% endif %}
If you did not sign up, you can ignore this email.
""",
    },
    {
        "code": "password_reset",
        "name": "Password Reset",
        "subject": "Reset your {{ company_name }} password",
        "variables": ["customer_name", "reset_link", "expiry_time"],
        "body_html": """\
<p>Hello{% if customer_name %} {{ customer_name }}{% endif %},</p>
<p>Someone asked to reset the password of your {{ company_name }} account.</p>
<p><a href="{{ reset_link }}">Choose a new password</a></p>
{% if expiry_time %}<p>The link is valid for {{ expiry_time }}.</p>{% endif %}
<p>If it was not you, ignore this email; your password stays unchanged.</p>
""",
        "body_text": """\
Hello{% if customer_name %} {{ customer_name }}{% endif %},
Someone asked to reset the password of your {{ company_name }} account.
Choose a new password: {{ reset_link }}
{% if expiry_time %}The link is valid for {{ expiry_time }}.{% endif %}
If it was not you, ignore this email; your password stays unchanged.
""",
    },
    {
        "code": "order_confirmation",
        "name": "Order Confirmation",
        "subject": "Order {{ order_number }} confirmed",
        "variables": ["customer_name", "order_number", "items", "total_amount"],
        "body_html": """\
<h2>Thank you for your order, {{ customer_name }}!</h2>
<p>Order <strong>{{ order_number }}</strong> has been received.</p>
{% if items is string %}<p>{{ items }}</p>{% else %}<ul>{% for item in items %}<li>{{ item.productName or item.product_name or item.name }} &times; {{ item.quantity }}</li>{% endfor %}</ul>{% endif %}
<p>Total: ${{ total_amount|money }}</p>
<p>&copy; {{ current_year }} {{ company_name }}</p>
""",
        "body_text": """\
Thank you for your order, {{ customer_name }}!
Order {{ order_number }} has been received.
{% if items is string %}{{ items }}{% else %}{% for item in items %}- {{ item.productName or item.product_name or item.name }} x {{ item.quantity }}
{% endfor %}{% endif %}
Total: ${{ total_amount|money }}
""",
    },
    {
        "code": "new_order_seller",
        "name": "New Order for Seller",
        "subject": "New order {{ order_number }} for your shop",
        "variables": ["seller_name", "order_number", "customer_name", "items", "total_amount"],
        "body_html": """\
<p>Hello{% if seller_name %} {{ seller_name }}{% endif %},</p>
<p>{{ customer_name }} placed order <strong>{{ order_number }}</strong> with these items from your shop:</p>
{% if items is string %}<p>{{ items }}</p>{% else %}<ul>{% for item in items %}<li>{{ item.productName or item.product_name or item.name }} &times; {{ item.quantity }}</li>{% endfor %}</ul>{% endif %}
<p>Amount for your shop: ${{ total_amount|money }}</p>
""",
        "body_text": """\
Hello{% if seller_name %} {{ seller_name }}{% endif %},
{{ customer_name }} placed order {{ order_number }} with these items from your shop:
{% if items is string %}{{ items }}{% else %}{% for item in items %}- {{ item.productName or item.product_name or item.name }} x {{ item.quantity }}
{% endfor %}{% endif %}
Amount for your shop: ${{ total_amount|money }}
""",
    },
    {
        "code": "order_status_update",
        "name": "Order Status Update",
        "subject": "Order {{ order_number }}: status is now {{ status }}",
        "variables": ["customer_name", "order_number", "status", "tracking_number", "carrier", "notes"],
        "body_html": """\
<p>Hello{% if customer_name %} {{ customer_name }}{% endif %},</p>
<p>Your order <strong>{{ order_number }}</strong> is now <strong>{{ status }}</strong>.</p>
{% if tracking_number %}<p>Tracking number: {{ tracking_number }}{% if carrier %} ({{ carrier }}){% endif %}</p>{% endif %}
{% if notes %}<p>{{ notes }}</p>{% endif %}
""",
        "body_text": """\
Hello{% if customer_name %} {{ customer_name }}{% endif %},
Your order {{ order_number }} is now {{ status }}.
{% if tracking_number %}Tracking number: {{ tracking_number }}{% if carrier %} ({{ carrier }}){% endif %}{% endif %}
{% if notes %}{{ notes }}{% endif %}
""",
    },
)
