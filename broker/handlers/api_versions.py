"""ApiVersions (key 18), versions 0-5.

Answers with every API the handler registry advertises and the version range served for each;
the registry is the only source, so an API without a handler is never advertised (and one
registered with ``advertised=False``, the telemetry APIs, is served but not listed).

With ``odradek.advertise.kafka.version`` set, the list and the ranges are those of that Kafka
release (intersected with odradek's), and ``transaction.version`` is capped at the level the
release supported (left out before 4.0; odradek.broker.advertised_versions).

Version notes:

* KIP-511: a request at a version above what we serve is not parsed (the client may be newer
  than us); the connection codec hands it here to answer at v0, with UNSUPPORTED_VERSION and
  ApiVersions' own range only (as Kafka's ``ApiVersionsRequest.getErrorResponse``), so the
  client can retry at a version we speak and learn the rest from that answer.
* v3+ carry ``client_software_name``/``version``; Kafka validates them (INVALID_REQUEST when
  they do not match ``[a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?``).
* v3+ tagged fields: the features this broker supports and has finalized (KIP-584): today
  ``transaction.version`` (0-2, finalized at ``odradek.transaction.version``, listed as
  finalized only above 0, as Kafka lists a feature at level 0 as not finalized); ZK migration
  not ready. Clients read ``transaction.version`` >= 2 as leave to use transaction version 2
  (KIP-890 part 2). The finalized-features epoch (the metadata offset on a KRaft cluster) is
  a constant here, since the levels change only with a restart.
* v5 (KIP-1242): a client names the cluster and node it means to reach; when it gives a
  cluster id and either differs from ours, the answer is REBOOTSTRAP_REQUIRED with no API list
  (the client's metadata is stale: the address now belongs to another broker). As in Kafka's
  ``KafkaApis``, the check comes after the INVALID_REQUEST one, and a null cluster id skips it.
"""

from __future__ import annotations

import re

from odradek.protocol import error_codes
from odradek.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse

from ..advertised_versions import CONFIG_KEY as ADVERTISED_RELEASE_KEY, feature_level
from ..error_responses import ErrorAnswer, error_response
from . import REGISTRY

_SOFTWARE_FIELD = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")


TRANSACTION_VERSION_FEATURE = "transaction.version"
SUPPORTED_TRANSACTION_VERSIONS = (0, 2)
FINALIZED_FEATURES_EPOCH = 0


def _features(broker) -> dict:
    low, high = SUPPORTED_TRANSACTION_VERSIONS
    high = feature_level(broker.config[ADVERTISED_RELEASE_KEY], TRANSACTION_VERSION_FEATURE, high)
    if high == 0:
        return {}  # an advertised release without the feature: Kafka lists a feature only above 0
    level = min(broker.config["odradek.transaction.version"], high)
    return dict(
        supported_features=[ApiVersionsResponse.SupportedFeatureKey(name=TRANSACTION_VERSION_FEATURE, min_version=low,
                                                                    max_version=high)],
        finalized_features_epoch=FINALIZED_FEATURES_EPOCH,
        finalized_features=[ApiVersionsResponse.FinalizedFeatureKey(name=TRANSACTION_VERSION_FEATURE,
                                                                    min_version_level=level, max_version_level=level)]
        if level > 0 else [])


def _api_list(ranges: dict[int, tuple[int, int]]):
    return [
        ApiVersionsResponse.ApiVersion(api_key=entry.api_key, min_version=ranges[entry.api_key][0],
                                       max_version=ranges[entry.api_key][1])
        for entry in REGISTRY.advertised() if entry.api_key in ranges
    ]


@REGISTRY.handles(ApiVersionsRequest, ApiVersionsResponse)
def handle_api_versions(ctx, request: ApiVersionsRequest) -> ApiVersionsResponse:
    ranges = REGISTRY.version_ranges(ctx.broker.config[ADVERTISED_RELEASE_KEY])
    served = ranges[ApiVersionsRequest.API_KEY]
    if not served[0] <= ctx.api_version <= served[1]:
        # Answered at v0 (the codec's KIP-511 path) as Kafka's error response for it.
        return error_response(request, 0, ErrorAnswer(error_codes.UNSUPPORTED_VERSION, None), served)
    if ctx.api_version >= 3 and not (_SOFTWARE_FIELD.match(request.client_software_name or "")
                                     and _SOFTWARE_FIELD.match(request.client_software_version or "")):
        return ApiVersionsResponse(error_code=error_codes.INVALID_REQUEST)
    broker = ctx.broker
    if ctx.api_version >= 5 and request.cluster_id is not None and (
            request.cluster_id != broker.cluster_id or request.node_id != broker.node_id):
        return ApiVersionsResponse(error_code=error_codes.REBOOTSTRAP_REQUIRED, throttle_time_ms=0)
    return ApiVersionsResponse(error_code=error_codes.NONE, api_keys=_api_list(ranges), throttle_time_ms=0,
                               **_features(broker))
