package org.example.range;

import org.apache.commons.lang3.StringUtils;

public final class Hello {
    public static void main(String[] args) {
        System.out.println(StringUtils.capitalize("hello from a version range"));
    }
}
