// The health check of the `mongo` service of deploy/compose.production.yaml, run every 5 s by
// `mongosh mongodb://127.0.0.1:27017/admin?directConnection=true <this file>` inside the
// container, without credentials. Exits 0 (healthy) once this node is the primary of `rs0`,
// the two users exist and the root password in the secret file signs in; otherwise it exits
// non-zero with the reason in the health log (`docker inspect`).
//
// On the first start mongod runs with --keyFile and --auth but has no user: MongoDB's localhost
// exception lets a connection from inside the container initiate the replica set and, once the
// node is primary, create the first user. So the first runs initiate `rs0`, then create `root`
// (role root) and sign in as it, then create the application user `bestow` with readWrite on
// the two Bestow databases only. Later runs sign in as root and find both users. The passwords
// are the compose secrets (files); they never appear in a command line or an environment.
// Changing a password afterwards is done in MongoDB (docs/operations.md), not by editing a file.

const { readFileSync } = require('fs');
const secret = (name) => readFileSync(`/run/secrets/${name}`, 'utf8').trim();

const ROOT_USER = 'root';
const APP_USER = 'bestow';
// The settings auth_database and event_database (their defaults).
const APP_DATABASES = ['auth_db', 'event_db'];

const hello = db.hello();
if (!hello.setName) {
  // Not initiated yet (the first start). The member's host is the name the services use.
  rs.initiate({ _id: 'rs0', members: [{ _id: 0, host: 'mongo:27017' }] });
  print('replica set rs0 initiated; waiting for this node to become primary');
  quit(1);
}
if (!hello.isWritablePrimary) {
  print(`not primary yet (${hello.setName})`);
  quit(1);
}

const admin = db.getSiblingDB('admin');
const rootPassword = secret('mongo_root_password');
try {
  admin.auth(ROOT_USER, rootPassword);
} catch (error) {
  // No user yet: the localhost exception allows this one createUser. Once any user exists it
  // refuses, and a wrong root password leaves the check failing with the error.
  print(`cannot sign in as ${ROOT_USER} (${error.message}); creating it`);
  admin.createUser({ user: ROOT_USER, pwd: rootPassword, roles: ['root'] });
  admin.auth(ROOT_USER, rootPassword);
}

if (admin.getUser(APP_USER) === null) {
  admin.createUser({
    user: APP_USER,
    pwd: secret('mongo_app_password'),
    roles: APP_DATABASES.map((name) => ({ role: 'readWrite', db: name })),
  });
  print(`created ${APP_USER} with readWrite on ${APP_DATABASES.join(', ')}`);
}
quit(0);
