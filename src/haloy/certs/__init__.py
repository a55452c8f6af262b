"""Certificates: store, ACME issuer, HTTP-01 challenge store, renewal policy.

    policy.py      pure: when to renew (30 days / ARI window), backoff with Retry-After
    certfile.py    read + check a `<domain>/fullchain.pem` + `privkey.pem` pair
    keys.py        ECDSA P-256 keys, CSRs, the proxy's in-memory self-signed default
    store.py       CertStore: atomic 0600 writes, hand-placed vs managed, ACME account
    challenges.py  ChallengeStore (thread-safe) + ChallengeApp (ASGI) for HTTP-01
    issuer.py      AcmeIssuer on the `acme` package (blocking; run on a worker thread)
    dns_check.py   pre-order DNS check (warnings only)
    manager.py     CertificateManager: ensure(wanted), run(), status(), on_change/on_event

haloyd wiring (composition root):
    challenges = ChallengeStore()          # mount ChallengeApp(challenges) on the API listener
    store = CertStore(paths.certs_dir)
    issuer = AcmeIssuer(cfg.acme, store, challenges)   # haloyd.yaml's `acme` section
    manager = CertificateManager(store, issuer, on_change=send_reload_certs, on_event=log)
    await manager.ensure(wanted_from_snapshot(snapshot))   # on deploy, with on_event=stream
    task_group.create_task(manager.run(lambda: wanted_from_snapshot(latest), wake_event))
"""
