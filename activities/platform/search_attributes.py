"""Search attributes every object workflow carries, so operators can filter runs in the Temporal UI."""

from temporalio.common import SearchAttributeKey

KIND = SearchAttributeKey.for_keyword("KtxKind")
PROMISE = SearchAttributeKey.for_keyword("KtxPromise")
NAMESPACE = SearchAttributeKey.for_keyword("KtxNamespace")
PHASE = SearchAttributeKey.for_keyword("KtxPhase")
# On Promise workflows: the Promises they require, so a Promise can find the ones that depend on it.
REQUIRES = SearchAttributeKey.for_keyword_list("KtxRequires")

# On Promise and resource workflows: the Destinations holding their outputs, and whether a group waits for one, so a
# Destination change reaches exactly the objects it affects.
DESTINATIONS = SearchAttributeKey.for_keyword_list("KtxDestinations")
UNPLACED = SearchAttributeKey.for_bool("KtxUnplaced")

# On every object workflow: the resourceVersion of its last published change (workflows/publishing.py), so the API's
# change feed asks visibility only for the objects that changed since it last looked.
RESOURCE_VERSION = SearchAttributeKey.for_int("KtxResourceVersion")

# On resource workflows: the Promise version the request last ran its configure at (Kratix's status.promiseVersion),
# so the console counts a Promise's requests per version by visibility instead of reading every memo.
PROMISE_VERSION = SearchAttributeKey.for_keyword("KtxPromiseVersion")

ALL = [KIND, PROMISE, NAMESPACE, PHASE, REQUIRES, DESTINATIONS, UNPLACED, RESOURCE_VERSION, PROMISE_VERSION]
