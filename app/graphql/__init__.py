"""The GraphQL API: thin, it translates between the schema and the rules."""
