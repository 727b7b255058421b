"""The admin service: admin accounts with roles, dashboard, service health, audited proxy."""
