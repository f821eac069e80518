/* Underlay next-hop lookups (ire/nce): destination, gateway, MACs, and what failed. */
#include "common.h"
#include "protos.d"

BEGIN
{
	printf("%-39s %-39s %-17s %-17s %s\n", "DEST", "GATEWAY", "SRC MAC", "DST MAC", "MSG");
}

sdt:xde::next-hop
{
	this->d = (in6_addr_t *)arg0;
	this->g = (in6_addr_t *)arg1;
	this->s = (uint8_t *)arg2;
	this->m = (uint8_t *)arg3;
	printf("%-39s %-39s ", inet_ntoa6(this->d), inet_ntoa6(this->g));
	ETH_FMT(this->s);
	printf(" ");
	ETH_FMT(this->m);
	printf(" %s\n", stringof(arg4));
}
