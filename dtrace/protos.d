/* Protocol numbers to names, for FLOW_FMT. Included by every script. */
string protos[int];

BEGIN
{
	protos[1] = "ICMP";
	protos[6] = "TCP";
	protos[17] = "UDP";
	protos[58] = "ICMPv6";
	protos[255] = "RAW";
}
