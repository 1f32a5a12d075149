"""ListTransactions (key 66), versions 0-2 (KIP-664, ``kafka-transactions list``).

Every transactional id the coordinator knows, filtered as Kafka filters: by state names (a
name Kafka does not know is listed in ``unknown_state_filters`` and matches nothing), by
producer ids, from v1 by duration (only transactions running longer than ``duration_filter``
ms; -1: no filter), from v2 by a transactional id regular expression (Java's ``matches``: the
whole id; an invalid expression answers INVALID_REGULAR_EXPRESSION). COORDINATOR_LOAD_IN_PROGRESS
while any partition of ``__transaction_state`` is being replayed.
"""

from __future__ import annotations

import re

from odradek.protocol import error_codes
from odradek.protocol.messages.list_transactions import (
    ListTransactionsRequest, ListTransactionsResponse, TransactionState,
)

from ..transactions.metadata import TxnState
from . import REGISTRY


@REGISTRY.handles(ListTransactionsRequest, ListTransactionsResponse)
def handle_list_transactions(ctx, request: ListTransactionsRequest) -> ListTransactionsResponse:
    coordinator = ctx.broker.transaction_coordinator
    pattern = None
    if ctx.api_version >= 2 and request.transactional_id_pattern:
        try:
            pattern = re.compile(request.transactional_id_pattern)
        except re.error:
            return ListTransactionsResponse(throttle_time_ms=0, error_code=error_codes.INVALID_REGULAR_EXPRESSION)
    error, transactions = coordinator.listing()
    if error != error_codes.NONE:
        return ListTransactionsResponse(throttle_time_ms=0, error_code=error)
    wanted_states = {name: TxnState.from_name(name) for name in request.state_filters}
    unknown = [name for name, state in wanted_states.items() if state is None]
    states = {state for state in wanted_states.values() if state is not None}
    producer_ids = set(request.producer_id_filters)
    duration = request.duration_filter if ctx.api_version >= 1 else -1
    now = coordinator.runtime.now_ms()
    listed = [
        TransactionState(transactional_id=metadata.transactional_id, producer_id=metadata.producer_id,
                         transaction_state=metadata.state.display_name)
        for metadata in transactions
        if (not request.state_filters or metadata.state in states)
        and (not producer_ids or metadata.producer_id in producer_ids)
        and (duration < 0 or now - metadata.start_ms > duration)
        and (pattern is None or pattern.fullmatch(metadata.transactional_id))
    ]
    return ListTransactionsResponse(throttle_time_ms=0, error_code=error_codes.NONE, unknown_state_filters=unknown,
                                    transaction_states=listed)
