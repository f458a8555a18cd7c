"""Binocular: live monitoring of contact-center interactions, as a GraphQL API."""
