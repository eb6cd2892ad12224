/*
 * original_dst: the address a connection was sent to before iptables REDIRECTed it to the
 * proxy, read with getsockopt(SO_ORIGINAL_DST) (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6). Node has
 * no API for it, so this is a tiny Node-API addon:
 *
 *   originalDst(fd: number) -> { address: string, port: number, family: 4 | 6 } | null
 *
 * null when the kernel has no NAT record for the connection (it was not redirected); throws with
 * the errno text otherwise. Node-API is ABI-stable: the few functions used are declared here
 * rather than taken from a Node header tree (the pinned `node` npm package ships none), and are
 * resolved from the node executable when the addon is loaded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h */
#endif
#ifndef SOL_IP
#define SOL_IP 0
#endif
#ifndef SOL_IPV6
#define SOL_IPV6 41
#endif

/* --- the Node-API subset used (js_native_api.h / node_api.h, stable since Node-API 1) --- */
typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok == 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
extern napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
extern napi_status napi_get_value_int32(napi_env, napi_value, int32_t *);
extern napi_status napi_create_object(napi_env, napi_value *);
extern napi_status napi_create_string_utf8(napi_env, const char *, size_t, napi_value *);
extern napi_status napi_create_uint32(napi_env, uint32_t, napi_value *);
extern napi_status napi_set_named_property(napi_env, napi_value, const char *, napi_value);
extern napi_status napi_get_null(napi_env, napi_value *);
extern napi_status napi_throw_error(napi_env, const char *, const char *);
extern napi_status napi_create_function(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
#define EXPORT __attribute__((visibility("default")))

static napi_value fail(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, "WEFT_ORIGINAL_DST", msg);
  return NULL;
}

static napi_value result(napi_env env, const char *address, uint16_t port, uint32_t family) {
  napi_value obj, a, p, f;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, address, strlen(address), &a);
  napi_create_uint32(env, port, &p);
  napi_create_uint32(env, family, &f);
  napi_set_named_property(env, obj, "address", a);
  napi_set_named_property(env, obj, "port", p);
  napi_set_named_property(env, obj, "family", f);
  return obj;
}

static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != 0 || fd < 0) {
    napi_throw_error(env, "WEFT_ORIGINAL_DST", "originalDst(fd) needs a file descriptor number");
    return NULL;
  }
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) return fail(env, "getsockname", errno);
  char text[INET6_ADDRSTRLEN];
  if (local.ss_family == AF_INET6) {
    struct sockaddr_in6 dst;
    len = sizeof dst;
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) == 0) {
      inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
      return result(env, text, ntohs(dst.sin6_port), 6);
    }
    /* an IPv4 connection on a dual-stack socket has its NAT record under SOL_IP */
    if (errno != ENOENT && errno != ENOPROTOOPT) return fail(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", errno);
  }
  struct sockaddr_in dst4;
  len = sizeof dst4;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst4, &len) == 0) {
    inet_ntop(AF_INET, &dst4.sin_addr, text, sizeof text);
    return result(env, text, ntohs(dst4.sin_port), 4);
  }
  if (errno == ENOENT || errno == ENOPROTOOPT) {
    napi_value null_value;
    napi_get_null(env, &null_value);
    return null_value;
  }
  return fail(env, "getsockopt(SO_ORIGINAL_DST)", errno);
}

EXPORT int32_t node_api_module_get_api_version_v1(void) { return 8; }

EXPORT napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "originalDst", (size_t)-1, original_dst, NULL, &fn) != 0) return NULL;
  napi_set_named_property(env, exports, "originalDst", fn);
  return exports;
}
