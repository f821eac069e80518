/*
 * Formatting shared by the scripts (`opte-trace` adds -I . so they include it).
 */
#define	DIR_STR(d)	((d) == 1 ? "IN" : "OUT")
#define	PATH_STR(p)	((p) == 1 ? "FAST" : ((p) == 3 ? "SLOW" : "DROP"))
#define	AF_INET		2
#define	AF_INET6	26

/* Print flow key `f` (a flow_id_sdt_arg_t *, already copied in) with no newline. */
#define	FLOW_FMT(f)							\
	printf("%s ", protos[(f)->proto] != NULL ? protos[(f)->proto] : "?");	\
	printf("%s:%u -> %s:%u",					\
	    (f)->af == AF_INET ? inet_ntoa((ipaddr_t *)&(f)->src[0]) :	\
	    inet_ntoa6((in6_addr_t *)&(f)->src[0]), (f)->src_port,	\
	    (f)->af == AF_INET ? inet_ntoa((ipaddr_t *)&(f)->dst[0]) :	\
	    inet_ntoa6((in6_addr_t *)&(f)->dst[0]), (f)->dst_port)

#define	FLOW(p)	((flow_id_sdt_arg_t *)(p))

#define	ETH_FMT(m)							\
	printf("%02x:%02x:%02x:%02x:%02x:%02x", (m)[0], (m)[1], (m)[2],	\
	    (m)[3], (m)[4], (m)[5])
