/*
 * Multicast: transmissions and receptions, local deliveries, underlay and external
 * forwards, missing forwarding entries, filtered sources (arg0: the port, or "" for a
 * reception; arg1: the underlay group). -D FLOW_DEBUG prints each local delivery; the
 * summary counts every event.
 */
#include "common.h"
#include "protos.d"

sdt:xde::mcast-tx, sdt:xde::mcast-rx, sdt:xde::mcast-local-delivery,
sdt:xde::mcast-underlay-fwd, sdt:xde::mcast-external-fwd, sdt:xde::mcast-no-fwd-entry,
sdt:xde::mcast-source-filtered
{
	@events[probename] = count();
}

#ifdef FLOW_DEBUG
sdt:xde::mcast-local-delivery
{
	printf("local delivery to %s of %s\n", stringof(arg0), inet_ntoa6((in6_addr_t *)arg1));
}
#endif

END
{
	printa("%-28s %@u\n", @events);
}
