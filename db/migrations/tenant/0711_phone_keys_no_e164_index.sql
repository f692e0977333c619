-- Nothing reads phone_keys by E.164 alone any more: Lookup and the import's duplicate check
-- find an E.164 number through its national number (phone_keys_national), since an E.164
-- number is "+", the country code and the national number. Dropping the index saves one
-- index entry per number written (imports write two numbers a customer).
DROP INDEX IF EXISTS phone_keys_e164;
