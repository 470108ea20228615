# SPDX-License-Identifier: MIT
# graphsim's directory model: tenants, apps, users, groups, partner policies and
# the per-tenant change log that delta queries read. Seeded users are stored as
# an index and materialised lazily so a million of them fit in memory and seed fast.
# It does not speak HTTP and does not enforce Graph's validation rules (gs_graph does).
import random
import re
import threading
import time
import unicodedata
import uuid

GIVEN = ["Zoë", "Łukasz", "Anaïs", "José", "Björn", "Chloé", "Dvořák", "Émile", "Søren", "Iñés",
         "Ana", "Mateo", "Olivia", "Liam", "Amélie", "Jürgen", "Noah", "Mía", "Ahmed", "Yuki",
         "Priya", "Wei", "Fatima", "Kofi", "Sven", "Åsa", "Nikolaj", "Ülkü", "Tomás", "Grace"]
SURNAME = ["Müller", "Kowalski", "García", "Dubois", "Nørgaard", "O'Brien", "Smith", "Núñez",
           "Öztürk", "Lefèvre", "Jensen", "Rossi", "Novák", "Svensson", "Tanaka", "Nguyen",
           "Brown", "Schäfer", "Łęcki", "Fernández", "Kim", "Patel", "Wójcik", "Hernández"]
DEPTS = ["Sales", "Engineering", "Finance", "Human Resources", "Legal", "Marketing",
         "Operations", "Research & Development", "Support", "IT"]
TITLES = ["Engineer", "Senior Engineer", "Manager", "Director", "Analyst", "Consultant",
          "Specialist", "Architect", "Coordinator", "Vice President"]
PLACES = [("Paris", "France", "FR", "fr-FR", "Île-de-France", "75001"),
          ("München", "Germany", "DE", "de-DE", "Bayern", "80331"),
          ("Kraków", "Poland", "PL", "pl-PL", "Małopolskie", "30-001"),
          ("Seattle", "United States", "US", "en-US", "WA", "98101"),
          ("São Paulo", "Brazil", "BR", "pt-BR", "SP", "01000-000"),
          ("Zürich", "Switzerland", "CH", "de-CH", "ZH", "8001"),
          ("Tokyo", "Japan", "JP", "ja-JP", "Tokyo", "100-0001"),
          ("København", "Denmark", "DK", "da-DK", "Hovedstaden", "1050")]
STREETS = ["Hauptstraße", "Rue de la Paix", "ulica Długa", "Main Street", "Avenida Paulista",
           "Bahnhofstrasse", "Strøget"]
EXT_DOMAINS = ["fabrikam.example", "partner.example", "gmail.example", "outlook.example"]

# Properties Graph returns when no $select is given (api-reference/v1.0/api/user-delta.md,
# example 1; the same default set as GET /users).
DEFAULT_USER_PROPS = ["businessPhones", "displayName", "givenName", "jobTitle", "mail",
                      "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                      "userPrincipalName", "id"]
# The user properties graphsim knows (resources/user.md); anything else in a PATCH is an
# unknown property unless it is a registered directory extension.
USER_PROPS = {"accountEnabled", "ageGroup", "businessPhones", "city", "companyName",
              "consentProvidedForMinor", "country", "createdDateTime", "creationType",
              "department", "displayName", "employeeHireDate", "employeeId",
              "employeeOrgData", "employeeType", "externalUserState",
              "externalUserStateChangeDateTime", "faxNumber", "givenName", "id",
              "identities", "imAddresses", "jobTitle", "mail", "mailNickname",
              "mobilePhone", "officeLocation", "onPremisesImmutableId", "otherMails",
              "passwordPolicies", "passwordProfile", "postalCode", "preferredLanguage",
              "proxyAddresses", "showInAddressList", "state", "streetAddress", "surname",
              "usageLocation", "userPrincipalName", "userType", "deletedDateTime",
              "onPremisesSyncEnabled", "securityIdentifier"}
# User properties whose $filter `eq` is supported only in advanced queries:
# ConsistencyLevel: eventual and $count=true, else 400 Request_UnsupportedQuery
# (concepts/aad-advanced-queries.md; the eq column of its table,
# includes/filter-directory-objects.md).
ADVANCED_EQ_PROPS = {"companyName", "employeeHireDate", "employeeType", "mobilePhone", "officeLocation",
                     "onPremisesExtensionAttributes", "onPremisesImmutableId", "onPremisesLastSyncDateTime",
                     "onPremisesSamAccountName", "passwordPolicies", "postalCode", "preferredLanguage",
                     "showInAddressList", "streetAddress"}
READONLY_PROPS = {"id", "createdDateTime", "creationType", "deletedDateTime",
                  "externalUserStateChangeDateTime", "imAddresses", "proxyAddresses",
                  "onPremisesSyncEnabled", "securityIdentifier"}
# Never returned by a GET (write-only).
HIDDEN_PROPS = {"passwordProfile"}


def iso(ts=None):
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def ascii_fold(s):
    table = {"Ł": "L", "ł": "l", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "AE", "'": ""}
    s = "".join(table.get(c, c) for c in s)
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


def guid(rng):
    v = rng.getrandbits(128)
    h = "%032x" % v
    return "%s-%s-4%s-%x%s-%s" % (h[0:8], h[8:12], h[13:16], 8 | (v >> 62 & 3), h[17:20], h[20:32])


class User:
    """One directory user. props is materialised on first access for seeded users."""
    __slots__ = ("id", "idx", "_p", "deleted", "manager", "created", "pver", "mver", "dver",
                 "tenant", "seedcfg")

    def __init__(self, tenant, uid, created, props=None, idx=-1, seedcfg=None):
        self.tenant = tenant
        self.id = uid
        self.idx = idx
        self.seedcfg = seedcfg
        self._p = props
        self.deleted = None      # deletedDateTime string while soft-deleted
        self.manager = None      # manager user id
        self.created = created   # seq at creation (or restore)
        self.pver = None         # {prop: seq of last change}; absent means "since creation"
        self.mver = 0            # seq of last manager change
        self.dver = 0            # seq of last soft delete / restore

    @property
    def props(self):
        """Read-only view for seeded users never modified: generated on each access and
        not kept, so reading a million users does not keep a million dicts alive."""
        if self._p is None:
            t = self.tenant
            p = t.pcache.get(self.id)
            if p is None:
                if len(t.pcache) >= PCACHE_MAX:
                    t.pcache.clear()
                p = t.pcache[self.id] = t.seed_props(self.idx, self.id, self.seedcfg)
            return p
        return self._p

    def mprops(self):
        """The stored, mutable property dict (materialised on first write)."""
        if self._p is None:
            self._p = self.tenant.pcache.pop(self.id, None) or \
                self.tenant.seed_props(self.idx, self.id, self.seedcfg)
        return self._p

    def prop_seq(self, name):
        if self.pver is None:
            return self.created
        return self.pver.get(name, self.created)


class Group:
    __slots__ = ("id", "props", "members", "mlog", "created", "pver", "deleted")

    def __init__(self, gid, props, created):
        self.id = gid
        self.props = props
        self.members = set()
        self.mlog = []           # [(seq, uid, added)]
        self.created = created
        self.pver = created
        self.deleted = None


class App:
    def __init__(self, client_id, secret=None, certificates=None):
        self.client_id = client_id
        self.secret = secret
        self.certificates = list(certificates or [])   # PEM strings
        # Application object id (the app's appId is client_id) and its
        # extensionProperty objects (api-reference/v1.0/resources/extensionproperty.md).
        self.object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "app:" + client_id))
        self.ext_props = []
        # False: the app lacks Application.ReadWrite.OwnedBy/All, so Graph answers
        # 403 Authorization_RequestDenied to application writes (emulator setting).
        self.application_write = True


class Tenant:
    def __init__(self, world, tid, domain, size="small", guest_invite_allowed=True):
        self.world = world
        self.id = tid
        self.domain = domain
        self.size = size
        self.guest_invite_allowed = guest_invite_allowed
        self.apps = {}
        self.users = {}
        self.order = []          # user ids in creation order (delta initial rounds walk it)
        self.tombstones = {}     # hard-deleted user id -> seq
        self.log_seq = []        # user change log: parallel lists, ascending seq
        self.log_id = []
        self.groups = {}
        self.gorder = []
        self.gtomb = {}
        self.glog_seq = []
        self.glog_id = []
        self.epoch = 0           # bumped by invalidate-delta: older tokens answer 410
        self.partners = {}       # other tenant id -> partner configuration dict
        self.sync_policies = {}  # other tenant id -> identitySynchronization dict
        self.extensions = set()  # registered extension_{appid}_{name} property names
        self.seeds = []          # seed configurations for lazily generated users
        self.indexes = {}        # prop -> {lowercased value: set(ids)}
        self.pcache = {}         # recently read seeded users' generated properties (bounded)
        self.created = time.time()

    # -- change log -------------------------------------------------------
    def touch_user(self, uid):
        seq = self.world.next_seq()
        self.log_seq.append(seq)
        self.log_id.append(uid)
        return seq

    def touch_group(self, gid):
        seq = self.world.next_seq()
        self.glog_seq.append(seq)
        self.glog_id.append(gid)
        return seq

    # -- indexes ----------------------------------------------------------
    # Explicit values (users created through the API or modified) live in self.indexes;
    # lazily generated seeded users are found by parsing the seeded value's index back out
    # of it (their UPN, mail, mailNickname and employeeId embed it), then verified.
    def _index_put(self, uid, prop, value, add):
        idx = self.indexes.get(prop)
        if idx is None:
            if not add:
                return
            idx = self.indexes[prop] = {}
        for v in _index_values(value):
            if add:
                idx.setdefault(v, set()).add(uid)
            else:
                s = idx.get(v)
                if s is not None:
                    s.discard(uid)

    def _reindex(self, u, prop, old):
        self._index_put(u.id, prop, old, False)
        self._index_put(u.id, prop, u.props.get(prop), True)

    def _seed_guess(self, prop, val):
        out = []
        for cfg in self.seeds:
            if prop == "employeeId":
                m = re.match(re.escape(cfg["prefix"].upper()) + r"(\d+)$", val, re.I)
                i = int(m.group(1)) - cfg["base"] if m else -1
            else:
                m = re.search(r"\." + re.escape(cfg["prefix"].lower()) + r"(\d+)(?:[_@]|$)", val.lower())
                i = int(m.group(1)) if m else -1
            if 0 <= i < cfg["count"]:
                out.append(self.order[cfg["base"] + i])
        return out

    def lookup(self, prop, val):
        """Ids of users whose prop equals val (case-insensitive; any element for collections),
        or None when only a full scan can tell."""
        keys = _index_values(val)
        if not keys:
            return None
        key = keys[0]
        out = set(self.indexes.get(prop, {}).get(key, ()))
        if self.seeds:
            if prop in SEED_GUESSABLE:
                for uid in self._seed_guess(prop, key):
                    u = self.users.get(uid)
                    if u is not None and key in _index_values(u.props.get(prop)):
                        out.add(uid)
            elif prop in SEEDED_PROPS:
                return None
        return out

    def find_user(self, key):
        """Look up by id or userPrincipalName (case-insensitive). Soft-deleted users too."""
        u = self.users.get(key)
        if u is not None:
            return u
        k = key.lower()
        u = self.users.get(k)
        if u is not None:
            return u
        for uid in self.lookup("userPrincipalName", k) or ():
            return self.users.get(uid)
        return None

    # -- mutation (all callers hold world.lock) ----------------------------
    def add_user(self, props, uid=None):
        uid = uid or guid(self.world.rng)
        seq = self.touch_user(uid)
        p = {k: v for k, v in props.items() if k != "id"}
        p.setdefault("createdDateTime", iso())
        u = User(self, uid, seq, p)
        mgr = p.pop("manager", None)
        self.users[uid] = u
        self.order.append(uid)
        for prop, v in p.items():
            self._index_put(uid, prop, v, True)
        if mgr:
            u.manager = mgr
            u.mver = seq
        return u

    def update_user(self, u, changes):
        """Apply {prop: value}; returns the set of props whose value actually changed."""
        changed = set()
        p = u.mprops()
        for k, v in changes.items():
            old = p.get(k, _MISSING)
            if old == v and old is not _MISSING:
                continue
            p[k] = v
            changed.add(k)
            self._reindex(u, k, None if old is _MISSING else old)
        if changed:
            seq = self.touch_user(u.id)
            if u.pver is None:
                u.pver = {}
            for k in changed:
                u.pver[k] = seq
        return changed

    def set_manager(self, u, mid):
        if u.manager == mid:
            return
        u.manager = mid
        u.mver = self.touch_user(u.id)

    def soft_delete(self, u):
        u.deleted = iso()
        u.dver = self.touch_user(u.id)
        for g in self.groups.values():
            if u.id in g.members:
                self.group_member(g, u.id, False, suspended=True)

    def restore(self, u):
        u.deleted = None
        u.dver = self.touch_user(u.id)
        for g in self.groups.values():
            if u.id in getattr(g, "props").get("_suspended", ()):
                g.props["_suspended"].discard(u.id)
                self.group_member(g, u.id, True)

    def hard_delete(self, u):
        for prop, v in u.props.items():
            self._index_put(u.id, prop, v, False)
        for g in self.groups.values():
            if u.id in g.members:
                self.group_member(g, u.id, False)
            g.props.get("_suspended", set()).discard(u.id)
        del self.users[u.id]
        self.tombstones[u.id] = self.touch_user(u.id)

    def add_group(self, props, gid=None):
        gid = gid or guid(self.world.rng)
        seq = self.touch_group(gid)
        g = Group(gid, dict(props), seq)
        self.groups[gid] = g
        self.gorder.append(gid)
        return g

    def group_member(self, g, uid, add, suspended=False):
        if add == (uid in g.members):
            return False
        seq = self.touch_group(g.id)
        if add:
            g.members.add(uid)
        else:
            g.members.discard(uid)
            if suspended:
                g.props.setdefault("_suspended", set()).add(uid)
        g.mlog.append((seq, uid, add))
        return True

    # -- seeding ------------------------------------------------------------
    def seed(self, count, seed=1, prefix="u", group=None, guest_fraction=0.05,
             disabled_fraction=0.05, with_manager=True):
        cfg = {"seed": seed, "prefix": prefix, "guest": guest_fraction,
               "disabled": disabled_fraction, "base": len(self.order), "count": count}
        self.seeds.append(cfg)
        rng = random.Random("%s/%d/%d" % (self.id, seed, len(self.order)))
        getbits = rng.getrandbits
        w = self.world
        users = self.users
        order = self.order
        log_seq = self.log_seq
        log_id = self.log_id
        ids = []
        seq0 = w.seq
        g = self.groups.get(group) if group else None
        for i in range(count):
            v = getbits(128)
            h = "%032x" % v
            uid = "%s-%s-4%s-a%s-%s" % (h[0:8], h[8:12], h[13:16], h[17:20], h[20:32])
            seq = seq0 + i + 1
            u = User(self, uid, seq, None, i, cfg)
            users[uid] = u
            order.append(uid)
            log_seq.append(seq)
            log_id.append(uid)
            ids.append(uid)
        w.seq = seq0 + count
        if with_manager:
            # A tree: user i reports to user (i-1)//8; user 0 has no manager.
            for i in range(1, count):
                u = users[ids[i]]
                u.manager = ids[(i - 1) // 8]
                u.mver = u.created
        if g is not None:
            for uid in ids:
                g.members.add(uid)
            seq = self.touch_group(g.id)
            g.mlog.extend((seq, uid, True) for uid in ids)
        return ids

    def seed_props(self, idx, uid, cfg):
        r = random.Random((cfg["seed"] << 32) ^ idx)
        given = r.choice(GIVEN)
        sur = r.choice(SURNAME)
        city, country, cc, lang, state, postal = r.choice(PLACES)
        nick = "%s.%s.%s%d" % (ascii_fold(given).lower(), ascii_fold(sur).lower(), cfg["prefix"], idx)
        guest = r.random() < cfg["guest"]
        disabled = r.random() < cfg["disabled"]
        p = {
            "displayName": "%s %s" % (given, sur),
            "givenName": given,
            "surname": sur,
            "mailNickname": nick,
            "department": r.choice(DEPTS),
            "jobTitle": r.choice(TITLES),
            "employeeId": "%s%07d" % (cfg["prefix"].upper(), idx + cfg["base"]),
            "companyName": "Contoso Ltd" if not guest else "Fabrikam Inc",
            "city": city,
            "country": country,
            "state": state,
            "postalCode": postal,
            "streetAddress": "%s %d" % (r.choice(STREETS), r.randint(1, 250)),
            "officeLocation": "%s %d/%d" % (city, r.randint(1, 9), r.randint(100, 999)),
            "businessPhones": ["+%d %d" % (r.randint(1, 99), r.randint(1000000, 9999999))],
            "preferredLanguage": lang,
            "usageLocation": cc,
            "accountEnabled": not disabled,
            "createdDateTime": iso(self.created - 86400 * 30 + idx % 86400),
            "otherMails": [],
        }
        if r.random() < 0.7:
            p["mobilePhone"] = "+%d %d" % (r.randint(1, 99), r.randint(10000000, 99999999))
        if guest:
            ext = r.choice(EXT_DOMAINS)
            p["mail"] = "%s@%s" % (nick, ext)
            p["userPrincipalName"] = "%s_%s#EXT#@%s" % (nick, ext, self.domain)
            p["userType"] = "Guest"
            p["creationType"] = "Invitation"
            p["externalUserState"] = "Accepted"
        else:
            p["mail"] = "%s@%s" % (nick, self.domain)
            p["userPrincipalName"] = "%s@%s" % (nick, self.domain)
            p["userType"] = "Member"
        return p


_MISSING = object()
PCACHE_MAX = 50000
SEED_GUESSABLE = {"userPrincipalName", "mail", "mailNickname", "employeeId"}
SEEDED_PROPS = {"displayName", "givenName", "surname", "mailNickname", "department", "jobTitle",
                "employeeId", "companyName", "city", "country", "state", "postalCode", "streetAddress",
                "officeLocation", "businessPhones", "preferredLanguage", "usageLocation", "accountEnabled",
                "createdDateTime", "mobilePhone", "mail", "userPrincipalName", "userType", "creationType",
                "externalUserState"}


def _index_values(v):
    if v is None:
        return ()
    if isinstance(v, list):
        return [str(x).lower() for x in v]
    if isinstance(v, bool):
        return ["true" if v else "false"]
    return [str(v).lower()]


class World:
    """Everything graphsim knows. One lock guards all of it (the GIL serialises anyway)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.seq = 0
        self.rng = random.Random()
        self.tenants = {}
        self.domains = {}

    def next_seq(self):
        self.seq += 1
        return self.seq

    def tenant(self, key):
        if key is None:
            return None
        t = self.tenants.get(key.lower())
        if t is None:
            t = self.domains.get(key.lower())
        return t

    def add_tenant(self, tid, domain, **kw):
        t = Tenant(self, tid.lower(), domain.lower(), **kw)
        self.tenants[t.id] = t
        self.domains[t.domain] = t
        return t
