package db_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
)

// childDataDirEnv makes the test binary act as a stand-in ctid process that starts a cluster
// on the given directory and holds it until killed (see TestLauncherAfterSIGKILL).
const childDataDirEnv = "DBTEST_CHILD_DATADIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDataDirEnv); dir != "" {
		runChild(dir)
		return
	}
	dbtest.Main(m)
}

func runChild(dir string) {
	c, err := db.StartCluster(context.Background(), db.ClusterOptions{DataDir: dir})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready", c.PID())
	// Hold the cluster until stdin closes or the parent kills us.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = c.Stop()
}
