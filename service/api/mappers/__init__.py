"""Proto <-> record mappers, one module per resource: the one place a field is translated."""
