# SPDX-License-Identifier: MIT
# graphsim's throttling: the identity-and-access service limits and the invitation
# manager limit of concepts/throttling-limits.md, as token buckets, with the documented
# request-cost table and response headers. It does not model CPU-based throttling.
import math
import re
import threading
import time

# Resource-unit quota per application+tenant per 10 s, by tenant size.
RU_LIMITS = {"small": 3500, "medium": 5000, "large": 8000}
RU_WINDOW = 10.0
APP_TENANT_WRITES = (3000, 150.0)     # writes per 2 min 30 s per app+tenant
APP_RU = (150000, 20.0)               # per application across tenants
APP_WRITES = (70000, 300.0)
TENANT_WRITES = (18000, 300.0)        # per tenant, all apps
INVITES = (150, 5.0)                  # /invitations per tenant, all apps

# Base resource-unit costs (throttling-limits.md, "base request costs"); path patterns are
# relative to /v1.0/. Unlisted paths cost 1.
COSTS = [
    ("GET", re.compile(r"^users$"), 2),
    ("GET", re.compile(r"^groups/[^/]+/members$"), 3),
    ("GET", re.compile(r"^groups/[^/]+/transitiveMembers$"), 5),
    ("GET", re.compile(r"^applications$"), 2),
    ("GET", re.compile(r"^applications/[^/]+/extensionProperties$"), 2),
    ("GET", re.compile(r"^subscribedSkus$"), 3),
    ("POST", re.compile(r"^directoryObjects/getByIds$"), 3),
]


def request_cost(method, rel_path, query):
    """(resource units, write cost) of one Graph request."""
    ru = 1
    for m, rx, c in COSTS:
        if m == method and rx.match(rel_path):
            ru = c
            break
    if "$select" in query:
        ru -= 1
    if "$expand" in query:
        ru += 1
    top = query.get("$top")
    if top is not None:
        try:
            if int(top) < 20:
                ru -= 1
        except ValueError:
            pass
    ru = max(ru, 1)
    write = 1 if method in ("POST", "PATCH", "PUT", "DELETE") else 0
    if method == "POST" and rel_path in ("directoryObjects/getByIds", "getObjectsById"):
        write = 0
    return ru, write


class Bucket:
    __slots__ = ("cap", "rate", "level", "stamp", "blocked_until")

    def __init__(self, cap, window):
        self.cap = float(cap)
        self.rate = cap / window
        self.level = float(cap)
        self.stamp = time.monotonic()
        self.blocked_until = 0.0

    def refill(self, now):
        self.level = min(self.cap, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def used_fraction(self):
        return (self.cap - self.level) / self.cap


class Throttle:
    def __init__(self, settings):
        self.settings = settings
        self.lock = threading.Lock()
        self.buckets = {}

    def _bucket(self, key, cap, window):
        scale = float(self.settings["time_scale"])
        b = self.buckets.get(key)
        if b is None or b.cap != cap * scale:
            b = Bucket(cap * scale, window)
            self.buckets[key] = b
        return b

    def reset(self):
        with self.lock:
            self.buckets.clear()

    def charge(self, tenant, app_id, method, rel_path, query):
        """Charges one request. Returns (ok, headers dict, retry_after or None, info)."""
        ru, wr = request_cost(method, rel_path, query)
        headers = {"x-ms-resource-unit": str(ru)}
        if not self.settings["throttle"]:
            return True, headers, None, None
        now = time.monotonic()
        checks = [(("ru", tenant.id, app_id), RU_LIMITS.get(tenant.size, 3500), RU_WINDOW, ru,
                   "Tenant_Application/ReadWrite/%s/%s" % (app_id, tenant.id), "ResourceUnitLimitExceeded"),
                  (("app", app_id), APP_RU[0], APP_RU[1], ru,
                   "Application/ReadWrite/%s/%s" % (app_id, tenant.id), "ResourceUnitLimitExceeded")]
        if wr:
            checks += [(("w", tenant.id, app_id), APP_TENANT_WRITES[0], APP_TENANT_WRITES[1], wr,
                        "Tenant_Application/Write/%s/%s" % (app_id, tenant.id), "WriteLimitExceeded"),
                       (("wa", app_id), APP_WRITES[0], APP_WRITES[1], wr,
                        "Application/Write/%s/%s" % (app_id, tenant.id), "WriteLimitExceeded"),
                       (("wt", tenant.id), TENANT_WRITES[0], TENANT_WRITES[1], wr,
                        "Tenant/Write/%s/%s" % (app_id, tenant.id), "WriteLimitExceeded")]
        if rel_path.startswith("invitations"):
            checks.append((("inv", tenant.id), INVITES[0], INVITES[1], 1,
                           "Tenant/ReadWrite/%s/%s" % (app_id, tenant.id), "InvitationLimitExceeded"))
        with self.lock:
            buckets = []
            for key, cap, window, cost, scope, info in checks:
                b = self._bucket(key, cap, window)
                b.refill(now)
                buckets.append((b, cost, scope, info))
            for b, cost, scope, info in buckets:
                # A request arriving before an announced Retry-After elapsed is refused too.
                if now < b.blocked_until or b.level < cost:
                    wait = max(b.blocked_until - now, (cost - b.level) / b.rate if b.level < cost else 0.0)
                    retry = max(1, int(math.ceil(wait)))
                    b.blocked_until = max(b.blocked_until, now + retry)
                    headers["x-ms-throttle-scope"] = scope
                    headers["x-ms-throttle-information"] = info
                    return False, headers, retry, info
            worst = 0.0
            for b, cost, scope, info in buckets:
                b.level -= cost
                worst = max(worst, b.used_fraction())
            if worst >= 0.8:
                headers["x-ms-throttle-limit-percentage"] = "%.2f" % worst
        return True, headers, None, None
