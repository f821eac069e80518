/* Header transformations run on the slow path: where (rt-/ft-LAYER), before and after. */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-3s %-16s %-16s %s\n", "DIR", "PORT", "LOCATION", "BEFORE => AFTER");
}

sdt:xde::ht-run
{
	this->before = FLOW(arg3);
	this->after = FLOW(arg4);
	printf("%-3s %-16s %-16s ", DIR_STR(arg0), stringof(arg1), stringof(arg2));
	FLOW_FMT(this->before);
	printf(" => ");
	FLOW_FMT(this->after);
	printf("\n");
}
