/*
 * Rule lookups in each layer: a match (with the rule's action), no match (the layer's
 * default applies), or a deny.
 */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-16s %-12s %-5s %-3s %s\n", "PORT", "LAYER", "MATCH", "DIR", "FLOW / ACTION");
}

sdt:xde::rule-match
{
	this->f = FLOW(arg3);
	printf("%-16s %-12s %-5s %-3s ", stringof(arg1), stringof(arg2), "YES", DIR_STR(arg0));
	FLOW_FMT(this->f);
	printf(" %s\n", stringof(arg4));
}

sdt:xde::rule-no-match, sdt:xde::rule-deny
{
	this->f = FLOW(arg3);
	printf("%-16s %-12s %-5s %-3s ", stringof(arg1), stringof(arg2),
	    probename == "rule-deny" ? "DENY" : "NO", DIR_STR(arg0));
	FLOW_FMT(this->f);
	printf("\n");
}
