package fetch

// The standard fetch actions (the FetchAction parameter of
// /action=Fetch), in upper case as the queue stores them. A repository
// performs the ones its Descriptor and FetchActions list; the scheduler
// submits ActionSynchronize.
const (
	ActionSynchronize = "SYNCHRONIZE"
	ActionCollect     = "COLLECT"
	ActionIdentifiers = "IDENTIFIERS"
	ActionDelete      = "DELETE"
	ActionInsert      = "INSERT"
	ActionUpdate      = "UPDATE"
)
