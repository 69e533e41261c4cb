"""Python's etcd clients against Lichen, as their users call them (run by python-clients.test.ts).

python3-etcd3 speaks etcd's gRPC API; python3-etcd3gw speaks etcd's JSON gateway (what OpenStack
and Patroni's etcd3 mode use). Neither was written for Lichen. Usage:

    python3 clients.py <scenario> '<json: endpoint, ca, cert, key, and the scenario's own>'

Each scenario raises (exit code 1, the reason on stderr) at the first answer that differs from
etcd's; it prints "ok" when every check passed.
"""
import io
import json
import queue
import sys

import grpc
import etcd3
import etcd3.events
import etcd3.exceptions
from etcd3gw.client import Etcd3Client

TIMEOUT_S = 10


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def grpc_client(args, cert=None, key=None, **login):
    host, port = args['endpoint'].rsplit(':', 1)
    return etcd3.client(host=host, port=int(port), ca_cert=args['ca'], cert_cert=cert or args['cert'],
                        cert_key=key or args['key'], timeout=TIMEOUT_S, **login)


def next_events(iterator, count):
    """The next `count` events of a watch, read on this thread (the iterator blocks)."""
    return [next(iterator) for _ in range(count)]


def etcd3_kv(args):
    c = grpc_client(args)
    status = c.status()
    member_ids = {m.id for m in c.members}
    check(len(member_ids) == 3, 'three members, got %r' % member_ids)
    check(status.leader is not None and status.leader.id in member_ids, 'the leader is a member')
    check(status.version.startswith('3.'), 'an etcd 3 version, got %r' % status.version)

    c.put('py/a', 'one')
    c.put('py/b', 'two')
    value, meta = c.get('py/a')
    check(value == b'one' and meta.key == b'py/a' and meta.version == 1, 'get py/a')
    check([m.key for _, m in c.get_prefix('py/', sort_order='descend')] == [b'py/b', b'py/a'], 'descending prefix')
    check(c.replace('py/a', 'one', 'uno') and not c.replace('py/a', 'one', 'eins'), 'replace compares the value')
    ok, responses = c.transaction(
        compare=[c.transactions.version('py/b') == 1],
        success=[c.transactions.put('py/c', 'three'), c.transactions.get('py/a')],
        failure=[])
    check(ok and responses[1][0][0] == b'uno', 'txn: success branch with its get')
    ok, _ = c.transaction(compare=[c.transactions.value('py/b') == 'nope'], success=[], failure=[c.transactions.delete('py/c')])
    check(not ok and c.get('py/c') == (None, None), 'txn: failure branch deletes')

    lease = c.lease(30)
    c.put('py/leased', 'x', lease=lease)
    check(lease.keys == [b'py/leased'] and 0 < lease.remaining_ttl <= 30, 'lease keys and ttl')
    lease.refresh()
    lease.revoke()
    check(c.get('py/leased') == (None, None), 'revoking the lease deleted its key')

    check(c.delete_prefix('py/').deleted == 2, 'delete_prefix')
    check(list(c.list_alarms()) == [], 'no alarms')
    snapshot = io.BytesIO()
    c.snapshot(snapshot)
    check(len(snapshot.getvalue()) > 0, 'a snapshot')
    print('ok')


def etcd3_watch(args):
    c = grpc_client(args)
    first = c.put('pw/k', '0').header.revision
    events, cancel = c.watch_prefix('pw/')
    c.put('pw/k', '1')
    c.delete('pw/k')
    seen = next_events(events, 2)
    cancel()
    check(isinstance(seen[0], etcd3.events.PutEvent) and seen[0].value == b'1', 'a put event')
    check(isinstance(seen[1], etcd3.events.DeleteEvent) and seen[1].key == b'pw/k', 'a delete event')

    # From an old revision: history first.
    events, cancel = c.watch('pw/k', start_revision=first)
    check([e.value for e in next_events(events, 2)] == [b'0', b'1'], 'history from start_revision')
    cancel()

    # From a compacted revision: the client raises etcd's compact revision.
    last = c.put('pw/k', '2').header.revision
    c.compact(last)
    try:
        events, cancel = c.watch('pw/k', start_revision=first)
        next(events)
        raise AssertionError('a watch from a compacted revision was not refused')
    except etcd3.exceptions.RevisionCompactedError as error:
        check(error.compacted_revision == last, 'compacted at %d, told %d' % (last, error.compacted_revision))

    # (Not its lock recipe: Debian's python3-etcd3 0.12 calls tenacity with an API Debian's
    # tenacity no longer has, so Lock.acquire fails in the client, whatever the server.)
    print('ok')


def etcd3_auth(args):
    """After the test enabled auth: alice may read and write under app/ and nowhere else."""
    alice = grpc_client(args, user='alice', password=args['alicePassword'])
    alice.put('app/py', 'mine')
    check(alice.get('app/py')[0] == b'mine', 'alice reads under app/')
    try:
        alice.put('other/py', 'no')
        raise AssertionError('a put outside the role was accepted')
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.PERMISSION_DENIED and error.details() == 'etcdserver: permission denied',
              'permission denied, got %s %r' % (error.code(), error.details()))
    try:
        grpc_client(args, user='alice', password='wrong').get('app/py')
        raise AssertionError('a wrong password was accepted')
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.INVALID_ARGUMENT
              and error.details() == 'etcdserver: authentication failed, invalid user ID or password',
              'authentication failed, got %s %r' % (error.code(), error.details()))
    # A certificate whose common name is no user, and no password: nothing is allowed.
    nobody = grpc_client(args, cert=args['nobodyCert'], key=args['nobodyKey'])
    try:
        nobody.get('app/py')
        raise AssertionError('a caller who is nobody read a key')
    except grpc.RpcError as error:
        check(error.details() == 'etcdserver: permission denied', 'nobody is denied, got %r' % error.details())
    print('ok')


def etcd3gw_gateway(args):
    host, port = args['endpoint'].rsplit(':', 1)
    c = Etcd3Client(host=host, port=int(port), protocol='https', ca_cert=args['ca'], cert_cert=args['cert'],
                    cert_key=args['key'], timeout=TIMEOUT_S, api_path='/v3/')
    check(c.status()['version'].startswith('3.'), 'status')
    check(len(c.members()) == 3, 'members')
    check(c.put('gw/a', 'one') and c.get('gw/a') == [b'one'], 'put and get')
    check(c.create('gw/b', 'x') and not c.create('gw/b', 'y'), 'create only if absent')
    check(c.replace('gw/a', 'one', 'uno') and not c.replace('gw/a', 'one', 'eins'), 'replace compares the value')
    listed = c.get_prefix('gw/')
    check([(v, m['key']) for v, m in listed] == [(b'uno', b'gw/a'), (b'x', b'gw/b')], 'prefix with metadata')
    check(listed[0][1]['version'] == '2', 'versions are strings, as in etcd\'s gateway')

    lease = c.lease(ttl=30)
    c.put('gw/leased', 'z', lease=lease)
    check(lease.keys() == [b'gw/leased'] and 0 < lease.ttl() <= 30, 'lease keys and ttl')
    check(lease.refresh() == 30 and lease.revoke(), 'refresh and revoke')
    check(c.get('gw/leased') == [], 'revoking the lease deleted its key')

    # From the revision after now (read with a range of gw/w, in base64), so puts made before the
    # watcher's stream is up are still seen.
    revision = int(c.post(c.get_url('/kv/range'), json={'key': 'Z3cvdw=='})['header']['revision'])
    events, cancel = c.watch_prefix('gw/w', start_revision=revision + 1)
    seen = queue.Queue()
    c.put('gw/w1', '1')
    c.put('gw/w2', '2')
    for event in events:
        seen.put(event)
        if seen.qsize() == 2:
            break
    cancel()
    check([seen.get()['kv']['key'], seen.get()['kv']['key']] == [b'gw/w1', b'gw/w2'], 'watch events in order')

    lock = c.lock(id='gwlock', ttl=10)
    check(lock.acquire() and lock.is_acquired() and lock.release(), 'lock')
    check(c.delete_prefix('gw/'), 'delete_prefix')
    print('ok')


SCENARIOS = {'etcd3-kv': etcd3_kv, 'etcd3-watch': etcd3_watch, 'etcd3-auth': etcd3_auth, 'etcd3gw': etcd3gw_gateway}

if __name__ == '__main__':
    SCENARIOS[sys.argv[1]](json.loads(sys.argv[2]))
