/*
 * Each layer a packet goes through on the slow path: port, layer, direction, the flow key
 * before and after the layer.
 */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-12s %-3s %s\n", "PORT", "LAYER", "DIR", "FLOW BEFORE => FLOW AFTER");
}

sdt:xde::layer-process-entry
{
	@entered[stringof(arg1), stringof(arg2), DIR_STR(arg0)] = count();
}

sdt:xde::layer-process-return
{
	this->before = FLOW(arg3);
	this->after = FLOW(arg4);
	printf("%-16s %-12s %-3s ", stringof(arg1), stringof(arg2), DIR_STR(arg0));
	FLOW_FMT(this->before);
	printf(" => ");
	FLOW_FMT(this->after);
	printf("\n");
}

END
{
	printf("\npackets entering each layer (port, layer, direction):\n");
	printa("%-16s %-12s %-3s %@u\n", @entered);
}
