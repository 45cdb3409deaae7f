package org.example.hello.app;

import org.example.hello.lib.Greeter;

/** Main prints a greeting. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.out.println(Greeter.greet(args.length > 0 ? args[0] : null));
    }
}
