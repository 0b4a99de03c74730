// The minimal environment every server starts from. Nothing of the gateway's
// own environment is inherited (it may hold other servers' secrets).

export function baseServerEnv(home = "/tmp"): Record<string, string> {
  return {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    LANG: "C.UTF-8",
  };
}
