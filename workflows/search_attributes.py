"""Search attributes every object workflow carries, so operators can filter runs in the Temporal UI."""

from temporalio.common import SearchAttributeKey

KIND = SearchAttributeKey.for_keyword("KtxKind")
PROMISE = SearchAttributeKey.for_keyword("KtxPromise")
NAMESPACE = SearchAttributeKey.for_keyword("KtxNamespace")
PHASE = SearchAttributeKey.for_keyword("KtxPhase")
# On Promise workflows: the Promises they require, so a Promise can find the ones that depend on it.
REQUIRES = SearchAttributeKey.for_keyword_list("KtxRequires")

ALL = [KIND, PROMISE, NAMESPACE, PHASE, REQUIRES]
