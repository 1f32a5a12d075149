"""One module per API; importing this package registers every handler in :data:`REGISTRY`.

``REGISTRY`` is the only source of the ApiVersions answer (see ``odradek.broker.registry``).
To serve a new API, add a module here that registers with ``@REGISTRY.handles(...)`` and import
it below; an API not imported here is neither advertised nor accepted.
"""

from ..registry import HandlerRegistry

REGISTRY = HandlerRegistry()

# Imported for their registrations (order does not matter: the registry sorts by key).
from . import (  # noqa: E402,F401
    add_offsets_to_txn,
    add_partitions_to_txn,
    alter_configs,
    api_versions,
    consumer_group_describe,
    consumer_group_heartbeat,
    create_acls,
    create_partitions,
    create_topics,
    delete_acls,
    delete_groups,
    delete_records,
    delete_topics,
    describe_acls,
    describe_cluster,
    describe_configs,
    describe_log_dirs,
    describe_producers,
    describe_quorum,
    describe_topic_partitions,
    describe_transactions,
    end_txn,
    describe_groups,
    fetch,
    find_coordinator,
    get_telemetry_subscriptions,
    heartbeat,
    incremental_alter_configs,
    init_producer_id,
    join_group,
    leave_group,
    list_groups,
    list_offsets,
    list_transactions,
    metadata,
    offset_commit,
    offset_delete,
    offset_fetch,
    offset_for_leader_epoch,
    produce,
    push_telemetry,
    sync_group,
    txn_offset_commit,
    write_txn_markers,
)
