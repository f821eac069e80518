/*
 * Multicast: transmissions and receptions, local deliveries, underlay forwards, and the
 * control operations. -D FLOW_DEBUG prints each event; the summary counts them.
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
	printf("local delivery to %s\n", stringof(arg0));
}
#endif

sdt:xde::mcast-subscribe, sdt:xde::mcast-unsubscribe, sdt:xde::mcast-unsubscribe-all,
sdt:xde::mcast-map-set, sdt:xde::mcast-map-clear, sdt:xde::mcast-fwd-set, sdt:xde::mcast-fwd-clear
{
	printf("%s\n", probename);
}

END
{
	printa("%-28s %@u\n", @events);
}
