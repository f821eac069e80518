/* An action failed to generate its ht for a flow: port, layer, direction, flow, why. */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-12s %-3s %-40s %s\n", "PORT", "LAYER", "DIR", "FLOW", "MSG");
}

sdt:xde::gen-ht-fail
{
	this->f = FLOW(arg3);
	printf("%-16s %-12s %-3s ", stringof(arg1), stringof(arg2), DIR_STR(arg0));
	FLOW_FMT(this->f);
	printf(" %s\n", stringof(arg4));
}
