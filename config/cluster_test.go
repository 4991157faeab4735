package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClusterSection(t *testing.T) {
	t.Parallel()
	c, err := Parse("c.cfg", []byte(""), nil)
	require.NoError(t, err)
	require.False(t, c.Cluster.Enabled, "off by default")
	require.Equal(t, Cluster{Name: "connector", LeaseTTL: 5 * time.Second, RequestTimeout: 2 * time.Second}, c.Cluster)

	c, err = Parse("c.cfg", []byte(`[Cluster]
Enabled=true
Name=prod
Etcd=http://10.0.0.1:2379, http://10.0.0.2:2379,http://10.0.0.3:2379
Store=postgres://connector@db.example.com:5432/connector?sslmode=verify-full
StorePassword=secret
RemoteHost=0.0.0.0
RemotePort=7100
AdvertisedAddress=node1.example.com:7100
LeaseTTL=8s
RequestTimeout=1500ms
`), nil)
	require.NoError(t, err)
	require.Equal(t, Cluster{
		Enabled: true, Name: "prod",
		Etcd:  []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"},
		Store: "postgres://connector@db.example.com:5432/connector?sslmode=verify-full", StorePassword: "secret",
		RemoteHost: "0.0.0.0", RemotePort: 7100, AdvertisedAddress: "node1.example.com:7100",
		LeaseTTL: 8 * time.Second, RequestTimeout: 1500 * time.Millisecond,
	}, c.Cluster)
}

func TestClusterSectionErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ cfg, want string }{
		{"[Cluster]\nEnabled=true\nStore=postgres://u@h/db\n",
			"config c.cfg:2: [Cluster] Enabled: cluster mode needs Etcd too (the etcd client URLs)"},
		{"[Cluster]\nEnabled=true\nEtcd=http://h:2379\n",
			"config c.cfg:2: [Cluster] Enabled: cluster mode needs Store too (the shared PostgreSQL database's URL)"},
		{"[Cluster]\nEtcd=h:2379\n",
			`config c.cfg:2: [Cluster] Etcd: "h:2379" is not an etcd client URL (expected http://host:port or https://host:port)`},
		{"[Cluster]\nStore=mysql://h/db\n",
			"config c.cfg:2: [Cluster] Store: is not a PostgreSQL URL (expected postgres://user@host:port/database)"},
		{"[Cluster]\nStore=postgres://u:hunter2@h/db\n",
			"config c.cfg:2: [Cluster] Store: holds a password: give it as StorePassword (which may be encrypted), PGPASSWORD or a PostgreSQL password file, so that it never shows in the URL"},
		{"[Cluster]\nEtcd=http://10.0.0.1:2379, http://root:hunter2@10.0.0.2:2379\n",
			"config c.cfg:2: [Cluster] Etcd: entry 2 holds a user name or password, which the connector never sends (it does not log in to etcd): expected http://host:port or https://host:port"},
		{"[Cluster]\nEtcd=root:hunter2@10.0.0.2:2379\n",
			"config c.cfg:2: [Cluster] Etcd: entry 1 is not an etcd client URL (expected http://host:port or https://host:port)"},
		{"[Cluster]\nLeaseTTL=500ms\n", `config c.cfg:2: [Cluster] LeaseTTL: "500ms": expected whole seconds, at least 1s`},
		{"[Cluster]\nAdvertisedAddress=node1\n", `config c.cfg:2: [Cluster] AdvertisedAddress: "node1" is not host:port (expected e.g. node1.example.com:7100)`},
		{"[Cluster]\nAdvertisedAddress=0.0.0.0:7100\n", `config c.cfg:2: [Cluster] AdvertisedAddress: "0.0.0.0:7100" is every interface of a machine, not an address the other nodes can reach this node at (each would dial its own machine): give this node's address as they reach it`},
		{"[Cluster]\nAdvertisedAddress=[::]:7100\n", `config c.cfg:2: [Cluster] AdvertisedAddress: "[::]:7100" is every interface of a machine, not an address the other nodes can reach this node at (each would dial its own machine): give this node's address as they reach it`},
		{"[Cluster]\nName=a/b\n", `config c.cfg:2: [Cluster] Name: "a/b": a cluster name has no slash or space`},
		{"[Cluster]\nRemoteHost=127.0.0.1:7100\n",
			`config c.cfg:2: [Cluster] RemoteHost: "127.0.0.1:7100" holds a port: give the address alone (e.g. 127.0.0.1) and the port in its own key`},
	} {
		_, err := Parse("c.cfg", []byte(tc.cfg), nil)
		require.EqualError(t, err, tc.want)
		require.NotContains(t, err.Error(), "hunter2", "a password is never repeated")
	}
}
