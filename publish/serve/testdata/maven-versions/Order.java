// Order prints the versions read from standard input (one a line) in the
// order of Maven's own ComparableVersion, as "rank<TAB>version<TAB>canonical";
// equal versions share a rank. It made order.txt from versions.txt with the
// ComparableVersion of Debian's Maven 3.8.7:
//
//	java -cp /usr/share/maven/lib/maven-artifact-3.x.jar Order.java < versions.txt > order.txt
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import org.apache.maven.artifact.versioning.ComparableVersion;

public class Order {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        List<String> vs = new ArrayList<>();
        for (String line; (line = in.readLine()) != null;) {
            if (!line.isEmpty() && !line.startsWith("#")) {
                vs.add(line);
            }
        }
        vs.sort((a, b) -> {
            int c = new ComparableVersion(a).compareTo(new ComparableVersion(b));
            return c != 0 ? c : a.compareTo(b);
        });
        int rank = 0;
        for (int i = 0; i < vs.size(); i++) {
            if (i > 0 && new ComparableVersion(vs.get(i - 1)).compareTo(new ComparableVersion(vs.get(i))) != 0) {
                rank++;
            }
            System.out.println(rank + "\t" + vs.get(i) + "\t" + new ComparableVersion(vs.get(i)).getCanonical());
        }
    }
}
