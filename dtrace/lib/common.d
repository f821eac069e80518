/*
 * The C shapes of the arguments the xde module's SDT probes pass, by kernel address (the
 * scripts dereference them directly); their Rust twins are `#[repr(C)]` in
 * xde/src/probes.rs. Loaded by `opte-trace` with `-L lib`.
 */

/* A flow key: InnerFlowId. IPv4 addresses are the first 4 bytes of `src` and `dst`. */
typedef struct flow_id_sdt_arg {
	uint8_t		proto;
	uint8_t		af;		/* 2: IPv4, 26: IPv6 */
	uint16_t	src_port;	/* host order; ICMP: the echo id */
	uint16_t	dst_port;
	uint8_t		src[16];
	uint8_t		dst[16];
} flow_id_sdt_arg_t;

/* The ioctl envelope, as it arrives in xde_ioc_opte_cmd (72 bytes; opte_api::OpteCmdIoctl). */
typedef struct opte_cmd_ioctl {
	uint64_t	api_version;
	int		cmd;
	uint64_t	flags;
	uint64_t	reserved1;
	uint64_t	req_bytes;
	size_t		req_len;
	uint64_t	resp_bytes;
	size_t		resp_len;
	size_t		resp_len_actual;
} opte_cmd_ioctl_t;

/* A MAC address passed by pointer (next-hop). */
typedef struct mac_sdt_arg {
	uint8_t		b[6];
} mac_sdt_arg_t;
