// Package mailfetch is the Google Mail connector: the fetch.Repository that
// indexes mailboxes, one document per message and one per attachment,
// kept up to date incrementally, on the same queue, datastore and
// ingestion targets as the HTTP connector.
//
// Its parts: the transports behind one interface (package mailbox): IMAP
// (imapbox, on go-imap v2, with Gmail's X-GM-EXT-1) and the Gmail API
// (gmailapi, on Google's official client); MIME reading of hostile mail
// (mimedoc); the test servers (mailtest: Dovecot, hoodiecrow-imap, an
// OAuth provider; gmailtest: a Gmail API stand-in checked against Google's
// discovery document). This package holds the settings (settings.go), the
// datastore records (record.go), the documents (document.go), Synchronize
// with its batching of deliveries and datastore writes (sync.go, on the
// pipelined restsync.Batch the REST connectors share) and the
// other fetch actions (actions.go).
//
//	cfg, err := config.Load(path, mailfetch.TaskKeys)
//	err = mailfetch.Check(cfg)
//	repo, err := mailfetch.New(mailfetch.Options{Config: cfg, Store: st, Target: target, Logger: log})
//
// Connector describes the connector for the type registry of issue 12
// ([Connector] Type=GOOGLEMAIL). docs/connectors/google-mail.md documents
// every setting, action, document field and the synchronization rules.
package mailfetch
