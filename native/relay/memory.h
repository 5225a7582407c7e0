/* Returning memory the agent no longer needs to the kernel (memory.c, ADR 0075). */
#ifndef WARD_MEMORY_H
#define WARD_MEMORY_H
#include <node_api.h>
napi_value wr_js_trim_memory(napi_env env, napi_callback_info info);
#endif
