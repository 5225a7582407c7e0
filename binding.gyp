{
  "targets": [
    {
      "target_name": "ward_relay",
      "sources": ["native/relay/relay.c", "native/relay/binding.c", "native/relay/exec.c", "native/relay/memory.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"],
      "cflags_c": ["-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
