/** "host:port" for messages, with IPv6 literals in brackets ("[::1]:8834"). */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
