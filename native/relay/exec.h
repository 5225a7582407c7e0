/* execve(2) for the agent's lean-runtime restart (exec.c). */
#ifndef WARD_EXEC_H
#define WARD_EXEC_H
#include <node_api.h>
napi_value wr_js_execve(napi_env env, napi_callback_info info);
#endif
