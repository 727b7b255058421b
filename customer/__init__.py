"""The customer service: accounts, sign-in, profile, address book (port 3001)."""
