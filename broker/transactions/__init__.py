"""Transactions: the transaction coordinator (``__transaction_state``) and its records."""
